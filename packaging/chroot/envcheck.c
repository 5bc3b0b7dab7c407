/* envcheck NAME EXPECTED: exits 0 when variable NAME holds exactly EXPECTED, 3 when it differs,
 * 4 when it is unset. A static stand-in for "the program" in the empty-root check
 * (scripts/package-check): it proves the injected variable arrived without printing it. */
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    const char *got = getenv(argv[1]);
    if (got == NULL) return 4;
    return strcmp(got, argv[2]) == 0 ? 0 : 3;
}
