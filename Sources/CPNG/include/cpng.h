// Placeholder: the PNG decoder and encoder (libpng with a setjmp error handler) land with the image issue.
int cpng_placeholder(void);
