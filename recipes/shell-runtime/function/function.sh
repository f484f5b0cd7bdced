# An example handler for the bash runtime: greets the event's "name" (a plain
# one: a name with quotes or backslashes in it is not picked up).
# An event with a "fail" field makes it fail, to show the error path.

handler() {
    local event=$1 name=world
    if [[ $event =~ \"fail\"[[:space:]]*:[[:space:]]*\"([^\"]*)\" ]]; then
        printf 'asked to fail: %s\n' "${BASH_REMATCH[1]}" >&2
        return 1
    fi
    if [[ $event =~ \"name\"[[:space:]]*:[[:space:]]*\"([^\"\\]*)\" ]]; then
        name=${BASH_REMATCH[1]}
    fi
    printf '{"greeting": "hello, %s", "runtime": "bash %s"}' "$name" "$BASH_VERSION"
}
