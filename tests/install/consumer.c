/* consumer.c: a program outside the tree, built against the installed header and library
 * through pkg-config: one block forward through the public API. */
#include <normscope.h>
#include <stdio.h>

int main(void)
{
    ns_config c = {.block = NS_BLOCK_MLP, .placement = ns_placement_find("span"), .depth = 2,
                   .width = 16, .hidden = 64, .ntok = 8, .act = NS_ACT_GELU,
                   .norm = NS_NORM_LAYERNORM, .norm_eps = 1e-5, .alpha = 0.5};
    ns_model *m = NULL;
    int st = ns_model_create(&m, &c);
    if (st == NS_OK)
        st = ns_model_init(m, 1);
    if (st == NS_OK)
        st = ns_fill_gaussian(ns_model_stream(m, 0), 8 * 16, 1.0, 1, -1, "input");
    if (st == NS_OK)
        st = ns_model_block_forward(m, 1);
    ns_model_free(m);
    if (st != NS_OK) {
        fprintf(stderr, "consumer: %s\n", ns_strerror(st));
        return 1;
    }
    printf("consumer: libnormscope %s works\n", ns_version());
    return 0;
}
