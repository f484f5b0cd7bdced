# A Lambda Runtime API client in bash alone, sourced by the bootstrap.
#
# It speaks HTTP/1.1 through bash's /dev/tcp, one request per connection, so
# the runtime needs no curl: the Amazon Linux images ship one, slimmer images
# may not.

# Counting ${#text} in bytes, as Content-Length must, needs the C locale.
export LC_ALL=C

_runtime_api="${AWS_LAMBDA_RUNTIME_API:?AWS_LAMBDA_RUNTIME_API is not set}"
_runtime_base="/2018-06-01/runtime"

# _runtime_http METHOD PATH [BODY [ERROR_TYPE]]
# Sets RUNTIME_STATUS, RUNTIME_REQUEST_ID and RUNTIME_BODY from the reply.
_runtime_http() {
    local method=$1 path=$2 payload=${3-} error_type=${4-} line name
    exec 3<>"/dev/tcp/${_runtime_api%:*}/${_runtime_api##*:}" || return 1
    {
        printf '%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n' \
            "$method" "$path" "$_runtime_api"
        if [ -n "$error_type" ]; then
            printf 'Lambda-Runtime-Function-Error-Type: %s\r\n' "$error_type"
        fi
        printf 'Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s' \
            "${#payload}" "$payload"
    } >&3

    RUNTIME_STATUS=0 RUNTIME_REQUEST_ID="" RUNTIME_BODY=""
    IFS= read -r line <&3 || { exec 3<&-; return 1; }
    line=${line#* }
    RUNTIME_STATUS=${line%% *}
    while IFS= read -r line <&3; do
        line=${line%$'\r'}
        [ -z "$line" ] && break
        name=${line%%:*}
        if [ "${name,,}" = "lambda-runtime-aws-request-id" ]; then
            RUNTIME_REQUEST_ID=${line#*: }
        fi
    done
    # The server closes the connection after the body: read to the end.
    IFS= read -r -d '' RUNTIME_BODY <&3
    exec 3<&-
    return 0
}

# _runtime_json_string TEXT: TEXT as a JSON string, quotes included.
_runtime_json_string() {
    local text=$1
    text=${text//\\/\\\\}
    text=${text//\"/\\\"}
    text=${text//$'\n'/\\n}
    text=${text//$'\r'/\\r}
    text=${text//$'\t'/\\t}
    printf '"%s"' "$text"
}

_runtime_error_document() {
    printf '{"errorType": %s, "errorMessage": %s}' \
        "$(_runtime_json_string "$1")" "$(_runtime_json_string "$2")"
}

# runtime_next: wait for the next event; sets RUNTIME_REQUEST_ID, RUNTIME_BODY.
runtime_next() {
    _runtime_http GET "$_runtime_base/invocation/next" && [ "$RUNTIME_STATUS" = 200 ]
}

# runtime_respond REQUEST_ID BODY
runtime_respond() {
    _runtime_http POST "$_runtime_base/invocation/$1/response" "$2"
}

# runtime_fail REQUEST_ID ERROR_TYPE MESSAGE
runtime_fail() {
    _runtime_http POST "$_runtime_base/invocation/$1/error" \
        "$(_runtime_error_document "$2" "$3")" "$2"
}

# runtime_init_error ERROR_TYPE MESSAGE: the runtime cannot start at all.
runtime_init_error() {
    _runtime_http POST "$_runtime_base/init/error" \
        "$(_runtime_error_document "$1" "$2")" "$1"
}
