// PNG decoding and encoding through libpng with every setjmp/longjmp kept inside this target:
// a bad file comes back as an error code and a message, never as abort() or a leak.
#ifndef CBAM_CPNG_H
#define CBAM_CPNG_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    CBAM_PNG_OK = 0,
    CBAM_PNG_CORRUPT = 1,      // libpng refused the data (bad chunk, CRC, zlib stream, ...)
    CBAM_PNG_TRUNCATED = 2,    // the data ended before the image did
    CBAM_PNG_TOO_LARGE = 3,    // the header's size is over the limits (nothing allocated)
    CBAM_PNG_OUT_OF_MEMORY = 5,
    CBAM_PNG_TOO_COMPLEX = 6,  // more decoder memory, or more image data, than the declared image needs
    CBAM_PNG_INVALID_ARGUMENT = 7,
    CBAM_PNG_TIMED_OUT = 8     // the time budget ran out
} CBAMPNGStatus;

typedef struct {
    uint64_t max_pixels;
    uint32_t max_side;
    uint64_t time_budget_ns;   // 0: no time limit
} CBAMPNGOptions;

typedef struct {
    int32_t width, height;
    int32_t bit_depth, color_type, interlaced; // from IHDR
    uint8_t *pixels;                           // cbam_png_decode only: RGB8, width*height*3, malloc'd;
                                               // release with cbam_png_release
    CBAMPNGStatus status;
    char message[256];
} CBAMPNGImage;

/// Reads the signature and IHDR only: checks the limits, sets width/height, bit depth, colour type.
CBAMPNGStatus cbam_png_read_header(const uint8_t *data, size_t size, const CBAMPNGOptions *options,
                                   CBAMPNGImage *result);

/// Decodes `data` into `destination` (exactly width*height*3 bytes) as PIL's `Image.open(f).convert("RGB")`
/// does: gray replicated, palette expanded, alpha and tRNS dropped, 16-bit colour reduced to its high byte,
/// 16-bit gray clipped to 255. Returns `result->status`; `result->pixels` stays NULL.
CBAMPNGStatus cbam_png_decode_into(const uint8_t *data, size_t size, const CBAMPNGOptions *options,
                                   uint8_t *destination, size_t capacity, CBAMPNGImage *result);

/// Both steps with a malloc'd buffer in `result->pixels`.
CBAMPNGStatus cbam_png_decode(const uint8_t *data, size_t size, const CBAMPNGOptions *options,
                              CBAMPNGImage *result);
void cbam_png_release(CBAMPNGImage *image);

typedef struct {
    uint8_t *bytes;  // the PNG file, malloc'd; release with cbam_png_release_encoded
    size_t size;
    CBAMPNGStatus status;
    char message[256];
} CBAMPNGEncoded;

/// Encodes 8-bit pixels, `channels` 1 (gray), 3 (RGB) or 4 (RGBA), rows top to bottom, no padding.
CBAMPNGStatus cbam_png_encode(const uint8_t *pixels, int32_t width, int32_t height, int32_t channels,
                              int32_t compression_level, CBAMPNGEncoded *result);
void cbam_png_release_encoded(CBAMPNGEncoded *encoded);

#endif
