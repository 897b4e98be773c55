// JPEG decoding through libjpeg(-turbo) with every setjmp/longjmp kept inside this target:
// a bad file comes back as an error code and a message, never as exit(), abort() or a leak.
#ifndef CBAM_CJPEG_H
#define CBAM_CJPEG_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    CBAM_JPEG_OK = 0,
    CBAM_JPEG_CORRUPT = 1,       // libjpeg refused the data
    CBAM_JPEG_TRUNCATED = 2,     // the data ended before the last scanline
    CBAM_JPEG_TOO_LARGE = 3,     // the header's size is over the limits (nothing allocated)
    CBAM_JPEG_UNSUPPORTED = 4,   // a valid JPEG this decoder does not handle (e.g. 2-component)
    CBAM_JPEG_OUT_OF_MEMORY = 5,
    CBAM_JPEG_TOO_MANY_SCANS = 6, // a progressive file with more scans than allowed (CPU-time bomb)
    CBAM_JPEG_INVALID_ARGUMENT = 7,
    CBAM_JPEG_TIMED_OUT = 8       // the time budget ran out
} CBAMJPEGStatus;

typedef struct {
    uint64_t max_pixels;          // width * height from the header must not exceed this
    uint32_t max_side;            // nor either side this
    uint32_t target_shorter_side; // > 0: decode at 1/2, 1/4 or 1/8 while the shorter side stays >= this
    uint32_t max_scans;           // 0: no limit
    uint64_t time_budget_ns;      // 0: no time limit
} CBAMJPEGOptions;

typedef struct {
    int32_t width, height;               // of `pixels`, after DCT scaling
    int32_t source_width, source_height; // from the frame header
    int32_t scale_denom;                 // 1, 2, 4 or 8
    int32_t components;                  // in the file: 1 (gray), 3 (YCbCr/RGB), 4 (CMYK/YCCK)
    uint8_t *pixels;                     // cbam_jpeg_decode only: RGB8, width*height*3, malloc'd;
                                         // release with cbam_jpeg_release
    CBAMJPEGStatus status;
    char message[256];
} CBAMJPEGImage;

/// A decode in progress, between cbam_jpeg_open and cbam_jpeg_close: the header is read once and the pixels
/// continue from it.
typedef struct CBAMJPEGDecoder CBAMJPEGDecoder;

/// Reads the header: checks the limits, picks the DCT scale and sets width/height (the size of the RGB8 output),
/// source size, scale and components. Returns the decoder to read the pixels with, or NULL with `result->status`
/// and `message` saying why. `data` must stay valid until cbam_jpeg_close.
CBAMJPEGDecoder *cbam_jpeg_open(const uint8_t *data, size_t size, const CBAMJPEGOptions *options,
                                CBAMJPEGImage *result);

/// Decodes the opened image into `destination` (exactly width*height*3 bytes) the way PIL's
/// `Image.open(f).convert("RGB")` does: ISLOW IDCT, fancy upsampling, Adobe-inverted CMYK. At most once per
/// decoder. Returns `result->status`; `result->pixels` stays NULL.
CBAMJPEGStatus cbam_jpeg_read_pixels(CBAMJPEGDecoder *decoder, uint8_t *destination, size_t capacity,
                                     CBAMJPEGImage *result);

/// Frees the decoder (NULL is fine).
void cbam_jpeg_close(CBAMJPEGDecoder *decoder);

/// Reads the header only (open and close): as cbam_jpeg_open, without keeping the decoder.
CBAMJPEGStatus cbam_jpeg_read_header(const uint8_t *data, size_t size, const CBAMJPEGOptions *options,
                                     CBAMJPEGImage *result);

/// Decodes `data` into `destination` (exactly width*height*3 bytes as cbam_jpeg_read_header gave with the
/// same options) the way PIL's `Image.open(f).convert("RGB")` does: ISLOW IDCT, fancy upsampling,
/// Adobe-inverted CMYK. Returns `result->status`; `result->pixels` stays NULL.
CBAMJPEGStatus cbam_jpeg_decode_into(const uint8_t *data, size_t size, const CBAMJPEGOptions *options,
                                     uint8_t *destination, size_t capacity, CBAMJPEGImage *result);

/// Both steps with a malloc'd buffer in `result->pixels`.
CBAMJPEGStatus cbam_jpeg_decode(const uint8_t *data, size_t size, const CBAMJPEGOptions *options,
                                CBAMJPEGImage *result);

/// Frees `image->pixels` (safe to call on any result, twice included).
void cbam_jpeg_release(CBAMJPEGImage *image);

#endif
