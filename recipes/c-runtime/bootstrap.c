/*
 * A custom runtime in C: the bootstrap is the whole runtime and the handler.
 *
 * It talks HTTP/1.1 to the Lambda Runtime API over a plain socket, one request
 * per connection, and needs nothing beyond libc. Linked statically, the same
 * binary runs on provided.al2 and provided.al2023.
 *
 * The handler answers every event with the event itself and the _HANDLER
 * value; an event holding the key "fail" is answered with an error instead,
 * to show that path.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define API_PREFIX "/2018-06-01/runtime"
#define REQUEST_ID_HEADER "Lambda-Runtime-Aws-Request-Id:"

struct reply {
    int status;
    char request_id[128];
    char *data; /* the whole reply; body points into it */
    char *body;
    size_t body_length;
};

static struct sockaddr_in api_address;
static char api_host[64];

static void die(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    fputs("bootstrap: ", stderr);
    vfprintf(stderr, format, args);
    fputc('\n', stderr);
    va_end(args);
    exit(1);
}

/* AWS_LAMBDA_RUNTIME_API is "host:port" with a numeric IPv4 host. */
static void read_api_address(void)
{
    const char *value = getenv("AWS_LAMBDA_RUNTIME_API");
    const char *colon = value ? strrchr(value, ':') : NULL;
    size_t host_length;

    if (colon == NULL)
        die("AWS_LAMBDA_RUNTIME_API is missing or has no port");
    host_length = (size_t)(colon - value);
    if (host_length == 0 || host_length >= sizeof api_host)
        die("AWS_LAMBDA_RUNTIME_API has a bad host: %s", value);
    memcpy(api_host, value, host_length);
    api_host[host_length] = '\0';

    memset(&api_address, 0, sizeof api_address);
    api_address.sin_family = AF_INET;
    api_address.sin_port = htons((unsigned short)atoi(colon + 1));
    if (strcmp(api_host, "localhost") == 0)
        api_address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    else if (inet_pton(AF_INET, api_host, &api_address.sin_addr) != 1)
        die("AWS_LAMBDA_RUNTIME_API is not a numeric IPv4 address: %s", value);
}

static void write_all(int fd, const char *data, size_t length)
{
    while (length > 0) {
        ssize_t written = write(fd, data, length);
        if (written <= 0)
            die("writing to the Runtime API failed");
        data += written;
        length -= (size_t)written;
    }
}

/* Send one request and read the reply to the end of the connection. */
static void exchange(const char *method, const char *path, const char *error_type,
                     const char *body, size_t body_length, struct reply *reply)
{
    char head[1024];
    size_t capacity = 65536, used = 0;
    char *end_of_head;
    char *line;
    int length;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0 || connect(fd, (struct sockaddr *)&api_address, sizeof api_address))
        die("cannot connect to the Runtime API at %s", getenv("AWS_LAMBDA_RUNTIME_API"));

    length = snprintf(head, sizeof head,
                      "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n"
                      "%s%s%s"
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                      method, path, api_host,
                      error_type ? "Lambda-Runtime-Function-Error-Type: " : "",
                      error_type ? error_type : "", error_type ? "\r\n" : "",
                      body_length);
    if (length < 0 || (size_t)length >= sizeof head)
        die("request head too long for %s", path);
    write_all(fd, head, (size_t)length);
    write_all(fd, body, body_length);

    reply->data = malloc(capacity + 1);
    for (;;) {
        ssize_t got;
        if (reply->data == NULL)
            die("out of memory reading a reply");
        got = read(fd, reply->data + used, capacity - used);
        if (got < 0)
            die("reading from the Runtime API failed");
        if (got == 0)
            break;
        used += (size_t)got;
        if (used == capacity) {
            capacity *= 2;
            reply->data = realloc(reply->data, capacity + 1);
        }
    }
    close(fd);
    reply->data[used] = '\0';

    end_of_head = strstr(reply->data, "\r\n\r\n");
    if (end_of_head == NULL || sscanf(reply->data, "HTTP/%*s %d", &reply->status) != 1)
        die("the Runtime API sent a malformed reply to %s", path);
    *end_of_head = '\0';
    reply->body = end_of_head + 4;
    reply->body_length = used - (size_t)(reply->body - reply->data);

    reply->request_id[0] = '\0';
    for (line = strstr(reply->data, "\r\n"); line != NULL; line = strstr(line, "\r\n")) {
        line += 2;
        if (strncasecmp(line, REQUEST_ID_HEADER, strlen(REQUEST_ID_HEADER)) == 0) {
            const char *value = line + strlen(REQUEST_ID_HEADER);
            size_t value_length;
            while (*value == ' ')
                value++;
            value_length = strcspn(value, "\r");
            if (value_length >= sizeof reply->request_id)
                die("request id too long");
            memcpy(reply->request_id, value, value_length);
            reply->request_id[value_length] = '\0';
        }
    }
}

/* Append text to a growing buffer, escaping it as the inside of a JSON string. */
static size_t append_json_text(char *out, const char *text)
{
    size_t used = 0;
    for (; *text; text++) {
        if (*text == '"' || *text == '\\')
            out[used++] = '\\';
        out[used++] = (*text == '\n' || *text == '\r' || *text == '\t') ? ' ' : *text;
    }
    return used;
}

static void post(const char *path, const char *error_type, const char *body,
                 size_t body_length)
{
    struct reply reply;
    exchange("POST", path, error_type, body, body_length, &reply);
    if (reply.status != 202)
        fprintf(stderr, "bootstrap: %s answered %d: %s\n", path, reply.status,
                reply.body);
    free(reply.data);
}

static void handle(const struct reply *event, const char *handler)
{
    char path[256];
    /* The event as it came, and the handler name escaped at most twice over. */
    char *answer = malloc(event->body_length + 2 * strlen(handler) + 64);
    size_t used;

    if (answer == NULL)
        die("out of memory answering an event");
    if (strstr(event->body, "\"fail\"") != NULL) {
        used = (size_t)sprintf(answer, "{\"errorType\": \"HandlerError\", "
                                       "\"errorMessage\": \"the event asked to fail\"}");
        snprintf(path, sizeof path, API_PREFIX "/invocation/%s/error", event->request_id);
        post(path, "HandlerError", answer, used);
    } else {
        used = (size_t)sprintf(answer, "{\"handler\": \"");
        used += append_json_text(answer + used, handler);
        used += (size_t)sprintf(answer + used, "\", \"event\": ");
        if (event->body_length == 0) {
            memcpy(answer + used, "null", 4);
            used += 4;
        } else {
            memcpy(answer + used, event->body, event->body_length);
            used += event->body_length;
        }
        answer[used++] = '}';
        snprintf(path, sizeof path, API_PREFIX "/invocation/%s/response",
                 event->request_id);
        post(path, NULL, answer, used);
    }
    free(answer);
}

int main(void)
{
    const char *handler = getenv("_HANDLER");

    read_api_address();
    if (handler == NULL)
        handler = "";

    for (;;) {
        struct reply event;
        exchange("GET", API_PREFIX "/invocation/next", NULL, "", 0, &event);
        if (event.status != 200 || event.request_id[0] == '\0')
            die("the Runtime API answered %d to next, without a request id",
                event.status);
        handle(&event, handler);
        free(event.data);
    }
}
