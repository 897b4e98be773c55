#include <cblas.h>
// Not in every cblas.h, but exported by OpenBLAS itself.
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
