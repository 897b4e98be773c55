// Placeholder: the JPEG decoder (libjpeg with a setjmp error manager) lands with the image issue.
int cjpeg_placeholder(void);
