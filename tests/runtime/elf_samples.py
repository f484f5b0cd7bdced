"""Tiny, complete ELF executables built byte by byte, for any architecture.

Each one only exits with status 0. They let tests hold a real binary for the
other architecture without a cross compiler or a download.
"""

from __future__ import annotations

import struct

# e_machine numbers and the machine code of "exit(0)" on each architecture.
EM_X86_64 = 62
EM_AARCH64 = 183
EXIT_CODE = {
    # mov eax, 60 (exit); xor edi, edi; syscall
    EM_X86_64: bytes.fromhex("b83c00000031ff0f05"),
    # mov x0, #0; mov x8, #93 (exit); svc #0 -- little-endian words
    EM_AARCH64: struct.pack("<3I", 0xD2800000, 0xD2800BA8, 0xD4000001),
}
LOAD_ADDRESS = 0x400000
HEADER_SIZE = 64
PROGRAM_HEADER_SIZE = 56


def static_exit_program(machine: int) -> bytes:
    """A statically linked ELF64 executable for ``machine`` that exits with 0."""
    code = EXIT_CODE[machine]
    code_offset = HEADER_SIZE + PROGRAM_HEADER_SIZE
    total = code_offset + len(code)
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)  # 64-bit, LE, v1, SysV
    header = ident + struct.pack(
        "<HHIQQQIHHHHHH",
        2,  # ET_EXEC
        machine,
        1,  # EV_CURRENT
        LOAD_ADDRESS + code_offset,  # entry point
        HEADER_SIZE,  # program headers follow the ELF header
        0,  # no section headers
        0,  # flags
        HEADER_SIZE,
        PROGRAM_HEADER_SIZE,
        1,  # one program header
        64,
        0,
        0,
    )
    load = struct.pack(
        "<IIQQQQQQ",
        1,  # PT_LOAD
        5,  # readable and executable
        0,
        LOAD_ADDRESS,
        LOAD_ADDRESS,
        total,
        total,
        0x1000,
    )
    return header + load + code
