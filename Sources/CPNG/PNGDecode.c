#include "CPNG.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>

typedef struct {
    const uint8_t *data;
    size_t size, offset;
    int ran_out;
    CBAMPNGStatus status;  // set before png_error by failures that are not libpng's
    char message[200];
} Reader;

static void read_from_memory(png_structp png, png_bytep out, size_t length) {
    Reader *reader = (Reader *)png_get_io_ptr(png);
    if (length > reader->size - reader->offset) {
        reader->ran_out = 1;
        png_error(png, "PNG data ends early (truncated file)");
    }
    memcpy(out, reader->data + reader->offset, length);
    reader->offset += length;
}

// libpng's default prints and aborts; this records the message and longjmps to our setjmp.
static void record_error(png_structp png, png_const_charp message) {
    Reader *reader = (Reader *)png_get_error_ptr(png);
    snprintf(reader->message, sizeof reader->message, "%s", message);
    png_longjmp(png, 1);
}

static void ignore_warning(png_structp png, png_const_charp message) {
    (void)png;
    (void)message;
}

// One decoded row (after libpng's expansions: 8-bit, or 16-bit gray) to RGB8, as PIL converts it.
static void row_to_rgb(const uint8_t *in, uint8_t *out, unsigned width, int channels, int gray16) {
    if (gray16) {  // PIL's I;16 -> RGB clips the 16-bit value to 255 rather than scaling it
        for (unsigned x = 0; x < width; x++, in += 2, out += 3) {
            unsigned v = ((unsigned)in[0] << 8) | in[1];
            uint8_t g = v > 255 ? 255 : (uint8_t)v;
            out[0] = out[1] = out[2] = g;
        }
        return;
    }
    switch (channels) {
    case 1:
        for (unsigned x = 0; x < width; x++, out += 3) out[0] = out[1] = out[2] = in[x];
        break;
    case 2:
        for (unsigned x = 0; x < width; x++, in += 2, out += 3) out[0] = out[1] = out[2] = in[0];
        break;
    case 3:
        memcpy(out, in, (size_t)width * 3);
        break;
    default:
        for (unsigned x = 0; x < width; x++, in += 4, out += 3) {
            out[0] = in[0];
            out[1] = in[1];
            out[2] = in[2];
        }
    }
}

// Reads IHDR and checks the limits; then, unless `destination` is NULL, decodes into it (exactly
// width * height * 3 bytes). Only libpng's rows before conversion are allocated here.
static CBAMPNGStatus decode_png(const uint8_t *data, size_t size, const CBAMPNGOptions *options,
                                uint8_t *destination, size_t capacity, CBAMPNGImage *result) {
    memset(result, 0, sizeof *result);
    Reader reader = {.data = data, .size = size, .offset = 0};

    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &reader, record_error, ignore_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (png == NULL || info == NULL) {
        png_destroy_read_struct(&png, &info, NULL);
        result->status = CBAM_PNG_OUT_OF_MEMORY;
        snprintf(result->message, sizeof result->message, "out of memory creating the PNG decoder");
        return result->status;
    }
    uint8_t *volatile decoded = NULL;  // libpng's rows before conversion to RGB8

    if (setjmp(png_jmpbuf(png))) {
        free(decoded);
        png_destroy_read_struct(&png, &info, NULL);
        result->status = reader.status != CBAM_PNG_OK ? reader.status
                       : reader.ran_out ? CBAM_PNG_TRUNCATED : CBAM_PNG_CORRUPT;
        snprintf(result->message, sizeof result->message, "%s", reader.message);
        return result->status;
    }

    png_set_read_fn(png, &reader, read_from_memory);
    png_set_chunk_malloc_max(png, 8u << 20);  // bounds ancillary chunks (zTXt/iCCP bombs)
    png_read_info(png, info);

    png_uint_32 width = 0, height = 0;
    int bit_depth = 0, color_type = 0, interlace = 0;
    png_get_IHDR(png, info, &width, &height, &bit_depth, &color_type, &interlace, NULL, NULL);
    result->bit_depth = bit_depth;
    result->color_type = color_type;
    result->interlaced = interlace != PNG_INTERLACE_NONE;
    uint64_t pixel_count = (uint64_t)width * height;
    if (width > options->max_side || height > options->max_side || pixel_count > options->max_pixels) {
        reader.status = CBAM_PNG_TOO_LARGE;
        snprintf(reader.message, sizeof reader.message,
                 "PNG is %ux%u (%llu pixels); the limit is %llu pixels and %u per side",
                 (unsigned)width, (unsigned)height, (unsigned long long)pixel_count,
                 (unsigned long long)options->max_pixels, options->max_side);
        png_longjmp(png, 1);
    }
    result->width = (int32_t)width;
    result->height = (int32_t)height;
    size_t out_row_bytes = (size_t)width * 3;
    if (destination == NULL) {
        png_destroy_read_struct(&png, &info, NULL);
        result->status = CBAM_PNG_OK;
        return CBAM_PNG_OK;
    }
    if (capacity != out_row_bytes * height) {
        reader.status = CBAM_PNG_INVALID_ARGUMENT;
        snprintf(reader.message, sizeof reader.message, "destination holds %zu bytes, the %ux%u image needs %zu",
                 capacity, (unsigned)width, (unsigned)height, out_row_bytes * height);
        png_longjmp(png, 1);
    }
    uint8_t *pixels = destination;

    int gray16 = color_type == PNG_COLOR_TYPE_GRAY && bit_depth == 16;
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (bit_depth == 16 && !gray16) png_set_strip_16(png);  // PIL's ";16B" unpackers keep the high byte
    int passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);

    int channels = png_get_channels(png, info);
    size_t decoded_row_bytes = png_get_rowbytes(png, info);
    // Interlaced images need every pass in memory; the others convert one row at a time.
    decoded = malloc(decoded_row_bytes * (passes > 1 ? height : 1));
    if (decoded == NULL) {
        reader.status = CBAM_PNG_OUT_OF_MEMORY;
        snprintf(reader.message, sizeof reader.message, "out of memory for a %ux%u image",
                 (unsigned)width, (unsigned)height);
        png_longjmp(png, 1);
    }

    if (passes > 1) {
        for (int pass = 0; pass < passes; pass++)
            for (png_uint_32 y = 0; y < height; y++)
                png_read_row(png, decoded + decoded_row_bytes * y, NULL);
        for (png_uint_32 y = 0; y < height; y++)
            row_to_rgb(decoded + decoded_row_bytes * y, pixels + out_row_bytes * y, width, channels, gray16);
    } else {
        for (png_uint_32 y = 0; y < height; y++) {
            png_read_row(png, decoded, NULL);
            row_to_rgb(decoded, pixels + out_row_bytes * y, width, channels, gray16);
        }
    }
    // No png_read_end: chunks after the image data do not change the pixels, and PIL does not require them.
    free(decoded);
    png_destroy_read_struct(&png, &info, NULL);
    result->status = CBAM_PNG_OK;
    return CBAM_PNG_OK;
}

CBAMPNGStatus cbam_png_read_header(const uint8_t *data, size_t size, const CBAMPNGOptions *options,
                                   CBAMPNGImage *result) {
    return decode_png(data, size, options, NULL, 0, result);
}

CBAMPNGStatus cbam_png_decode_into(const uint8_t *data, size_t size, const CBAMPNGOptions *options,
                                   uint8_t *destination, size_t capacity, CBAMPNGImage *result) {
    if (destination == NULL) {
        memset(result, 0, sizeof *result);
        result->status = CBAM_PNG_INVALID_ARGUMENT;
        snprintf(result->message, sizeof result->message, "no destination buffer");
        return result->status;
    }
    return decode_png(data, size, options, destination, capacity, result);
}

CBAMPNGStatus cbam_png_decode(const uint8_t *data, size_t size, const CBAMPNGOptions *options,
                              CBAMPNGImage *result) {
    if (cbam_png_read_header(data, size, options, result) != CBAM_PNG_OK) return result->status;
    size_t capacity = (size_t)result->width * (size_t)result->height * 3;
    uint8_t *pixels = malloc(capacity ? capacity : 1);
    if (pixels == NULL) {
        result->status = CBAM_PNG_OUT_OF_MEMORY;
        snprintf(result->message, sizeof result->message, "out of memory for the decoded image");
        return result->status;
    }
    if (cbam_png_decode_into(data, size, options, pixels, capacity, result) != CBAM_PNG_OK) {
        free(pixels);
        return result->status;
    }
    result->pixels = pixels;
    return CBAM_PNG_OK;
}

void cbam_png_release(CBAMPNGImage *image) {
    free(image->pixels);
    image->pixels = NULL;
}
