/*
 * A test double of WeCom's Finance SDK with the ABI of WeWorkFinanceSdk_C.h.
 *
 * The sopflow binding loads it exactly as it loads Tencent's libWeWorkFinanceSdk_C.so.
 * sopflow_wecom.fake.archive compiles it with the system's cc (once, into a cache dir)
 * and writes the files it answers from, in the directory named by WWFAKE_DIR:
 *
 *   secret            the archive Secret Init must be given (else GetChatData answers
 *                     the server's errcode 40001 in its JSON, as a wrong secret does)
 *   chatdata.jsonl    one GetChatData item per line, ascending seq, each starting {"seq":N,
 *                     (publickey_ver, encrypt_random_key, encrypt_chat_msg made by fake.archive.seal)
 *   init_rc           if present: the return code Init gives (10011 ...)
 *   rc                if present: the return code every GetChatData call gives (10001 ...)
 *   errcode           if present: the server errcode GetChatData's JSON carries (301042 ...)
 *   hang              if present and holding N (or empty, N = 1): the Nth and later
 *                     GetChatData calls (counted in "calls") create "hanging" and wait,
 *                     at most 60 s, while "hang" exists - the tests kill -9 the process there
 *   calls             appended "seq limit" per GetChatData call
 *   media/<sdkfileid> the bytes GetMediaData serves, CHUNK bytes a call; indexbuf is the
 *                     decimal offset of the next chunk
 *
 * DecryptData's scheme (the fake's own; Tencent's is not public): encrypt_chat_msg is
 * Base64("WWFK" + plaintext), each byte XOR-ed with the random key repeated.  A key that
 * does not give back the "WWFK" prefix is refused with 10008, as the real library
 * refuses a wrong key.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

typedef struct Slice_t { char *buf; int len; } Slice_t;
typedef struct MediaData { char *outindexbuf; int out_len; char *data; int data_len; int is_finish; } MediaData_t;
typedef struct WeWorkFinanceSdk_t { char corpid[128]; char secret[256]; } WeWorkFinanceSdk_t;

#define CHUNK 1000

static void path_of(char *out, size_t n, const char *name) {
    const char *dir = getenv("WWFAKE_DIR");
    snprintf(out, n, "%s/%s", dir ? dir : ".", name);
}

static char *read_file(const char *name, long *size) {
    char path[4096];
    path_of(path, sizeof path, name);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc(n + 1);
    if (n > 0 && fread(buf, 1, n, f) != (size_t)n) { fclose(f); free(buf); return NULL; }
    buf[n] = 0;
    fclose(f);
    if (size) *size = n;
    return buf;
}

static int exists(const char *name) {
    char path[4096];
    path_of(path, sizeof path, name);
    return access(path, F_OK) == 0;
}

static void set_slice(Slice_t *s, const char *data, int len) {
    free(s->buf);
    s->buf = malloc(len + 1);
    memcpy(s->buf, data, len);
    s->buf[len] = 0;
    s->len = len;
}

WeWorkFinanceSdk_t *NewSdk(void) { return calloc(1, sizeof(WeWorkFinanceSdk_t)); }

void DestroySdk(WeWorkFinanceSdk_t *sdk) { free(sdk); }

int Init(WeWorkFinanceSdk_t *sdk, const char *corpid, const char *secret) {
    if (!sdk || !corpid || !secret || !*corpid) return 10000;
    char *init_rc = read_file("init_rc", NULL);
    if (init_rc) { int code = atoi(init_rc); free(init_rc); if (code) return code; }
    snprintf(sdk->corpid, sizeof sdk->corpid, "%s", corpid);
    snprintf(sdk->secret, sizeof sdk->secret, "%s", secret);
    return 0;
}

Slice_t *NewSlice(void) { return calloc(1, sizeof(Slice_t)); }
void FreeSlice(Slice_t *s) { if (s) { free(s->buf); free(s); } }
char *GetContentFromSlice(Slice_t *s) { return s ? s->buf : NULL; }
int GetSliceLen(Slice_t *s) { return s ? s->len : 0; }

int GetChatData(WeWorkFinanceSdk_t *sdk, unsigned long long seq, unsigned int limit, const char *proxy,
                const char *passwd, int timeout, Slice_t *out) {
    (void)proxy; (void)passwd; (void)timeout;
    char path[4096];
    path_of(path, sizeof path, "calls");
    FILE *calls = fopen(path, "a");
    if (calls) { fprintf(calls, "%llu %u\n", seq, limit); fclose(calls); }
    if (!sdk || !out || limit < 1 || limit > 1000) return 10000;
    char *hang = read_file("hang", NULL);
    int hang_set = hang != NULL, hang_from = hang && *hang ? atoi(hang) : 1, call_number = 0;
    free(hang);
    char *log = hang_set ? read_file("calls", NULL) : NULL;
    for (char *c = log; c && *c; c++) call_number += *c == '\n';
    free(log);
    if (hang_set && call_number >= hang_from) {
        path_of(path, sizeof path, "hanging");
        FILE *h = fopen(path, "w");
        if (h) fclose(h);
        struct timespec tick = {0, 100 * 1000 * 1000};
        for (int i = 0; i < 600 && exists("hang"); i++) nanosleep(&tick, NULL);
    }
    char *rc = read_file("rc", NULL);
    if (rc) { int code = atoi(rc); free(rc); if (code) return code; }
    char *expected = read_file("secret", NULL);
    char *errcode = read_file("errcode", NULL);
    int err = errcode ? atoi(errcode) : 0;
    free(errcode);
    if (expected) {
        size_t n = strcspn(expected, "\r\n");
        expected[n] = 0;
        if (strcmp(expected, sdk->secret) != 0) err = 40001;
        free(expected);
    }
    if (err) {
        char msg[128];
        int n = snprintf(msg, sizeof msg, "{\"errcode\":%d,\"errmsg\":\"fake error %d\",\"chatdata\":[]}", err, err);
        set_slice(out, msg, n);
        return 0;
    }
    long size = 0;
    char *data = read_file("chatdata.jsonl", &size);
    size_t cap = 64 + (size_t)size, used = 0;
    char *json = malloc(cap);
    used += sprintf(json, "{\"errcode\":0,\"errmsg\":\"ok\",\"chatdata\":[");
    unsigned int count = 0;
    for (char *line = data; data && line && *line && count < limit;) {
        char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        const char *at = strstr(line, "\"seq\":");
        if (len > 0 && at && at < line + len && strtoull(at + 6, NULL, 10) > seq) {
            if (count) json[used++] = ',';
            memcpy(json + used, line, len);
            used += len;
            count++;
        }
        line = end ? end + 1 : NULL;
    }
    used += sprintf(json + used, "]}");
    set_slice(out, json, (int)used);
    free(json);
    free(data);
    return 0;
}

static int b64_value(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

static int b64_decode(const char *in, unsigned char *out) {
    int n = 0, bits = 0, acc = 0;
    for (; *in && *in != '='; in++) {
        int v = b64_value(*in);
        if (v < 0) return -1;
        acc = (acc << 6) | v;
        bits += 6;
        if (bits >= 8) { bits -= 8; out[n++] = (unsigned char)((acc >> bits) & 0xff); }
    }
    return n;
}

int DecryptData(const char *encrypt_key, const char *encrypt_msg, Slice_t *msg) {
    if (!encrypt_key || !encrypt_msg || !msg) return 10000;
    size_t klen = strlen(encrypt_key);
    if (klen == 0) return 10008;
    unsigned char *raw = malloc(strlen(encrypt_msg) + 1);
    int n = b64_decode(encrypt_msg, raw);
    if (n < 4) { free(raw); return 10006; }
    for (int i = 0; i < n; i++) raw[i] ^= (unsigned char)encrypt_key[i % klen];
    if (memcmp(raw, "WWFK", 4) != 0) { free(raw); return 10008; }
    set_slice(msg, (char *)raw + 4, n - 4);
    free(raw);
    return 0;
}

MediaData_t *NewMediaData(void) { return calloc(1, sizeof(MediaData_t)); }
void FreeMediaData(MediaData_t *m) { if (m) { free(m->outindexbuf); free(m->data); free(m); } }
char *GetOutIndexBuf(MediaData_t *m) { return m->outindexbuf; }
char *GetData(MediaData_t *m) { return m->data; }
int GetIndexLen(MediaData_t *m) { return m->out_len; }
int GetDataLen(MediaData_t *m) { return m->data_len; }
int IsMediaDataFinish(MediaData_t *m) { return m->is_finish; }

int GetMediaData(WeWorkFinanceSdk_t *sdk, const char *indexbuf, const char *sdkFileid, const char *proxy,
                 const char *passwd, int timeout, MediaData_t *m) {
    (void)proxy; (void)passwd; (void)timeout;
    if (!sdk || !sdkFileid || !m || strchr(sdkFileid, '/') || !*sdkFileid) return 10005;
    char name[512];
    snprintf(name, sizeof name, "media/%s", sdkFileid);
    long size = 0;
    char *file = read_file(name, &size);
    if (!file) return 10005;
    long offset = indexbuf && *indexbuf ? atol(indexbuf) : 0;
    if (offset < 0 || offset > size) { free(file); return 10000; }
    long n = size - offset < CHUNK ? size - offset : CHUNK;
    free(m->data);
    free(m->outindexbuf);
    m->data = malloc(n + 1);
    memcpy(m->data, file + offset, n);
    m->data_len = (int)n;
    m->outindexbuf = malloc(32);
    m->out_len = sprintf(m->outindexbuf, "%ld", offset + n);
    m->is_finish = offset + n >= size;
    free(file);
    return 0;
}
