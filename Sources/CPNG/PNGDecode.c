#include "CPNG.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <png.h>

// Bounds on what one decode may cost, whatever the file says:
// - memory: every allocation libpng makes goes through `budget_malloc`, which refuses to hold more than
//   BASE_MEMORY_BUDGET before the header is read and that plus a few rows of the declared image after it;
// - work: the compressed image data read may exceed what the declared image needs (its inflated size, stored
//   blocks included) by IDAT_MARGIN at most, so a zlib stream that inflates far past the last row is cut off;
// - time: the read callback and the row loop check the caller's deadline.
#define BASE_MEMORY_BUDGET ((size_t)1 << 20)
#define IDAT_MARGIN ((uint64_t)4096)

typedef struct {
    const uint8_t *data;
    size_t size, offset;
    size_t idat_limit;     // reading past this offset means more image data than the image can use
    struct timespec deadline;
    int has_deadline;
    int ran_out;
    size_t memory_in_use, memory_budget;
    CBAMPNGStatus status;  // set before png_error by failures that are not libpng's
    char message[200];
} Reader;

static int deadline_passed(const Reader *reader) {
    if (!reader->has_deadline) return 0;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > reader->deadline.tv_sec ||
           (now.tv_sec == reader->deadline.tv_sec && now.tv_nsec >= reader->deadline.tv_nsec);
}

static void fail_over_time(png_structp png, Reader *reader) {
    reader->status = CBAM_PNG_TIMED_OUT;
    snprintf(reader->message, sizeof reader->message, "decoding the PNG took longer than its time budget");
    png_error(png, reader->message);
}

static void read_from_memory(png_structp png, png_bytep out, size_t length) {
    Reader *reader = (Reader *)png_get_io_ptr(png);
    if (length > reader->size - reader->offset) {
        reader->ran_out = 1;
        png_error(png, "PNG data ends early (truncated file)");
    }
    if (reader->offset + length > reader->idat_limit) {
        reader->status = CBAM_PNG_TOO_COMPLEX;
        snprintf(reader->message, sizeof reader->message,
                 "the PNG's image data is longer than its declared size can use (a decompression bomb?)");
        png_error(png, reader->message);
    }
    if (deadline_passed(reader)) fail_over_time(png, reader);
    memcpy(out, reader->data + reader->offset, length);
    reader->offset += length;
}

// Each block carries its size in front, so that free knows what to give back to the budget.
typedef union { size_t size; max_align_t align; } BlockHeader;

static png_voidp budget_malloc(png_structp png, png_alloc_size_t size) {
    Reader *reader = (Reader *)png_get_mem_ptr(png);
    if (size > reader->memory_budget - reader->memory_in_use) {  // libpng reports it (or skips what needed it)
        reader->status = CBAM_PNG_TOO_COMPLEX;
        snprintf(reader->message, sizeof reader->message,
                 "decoding the PNG would take more than %zu bytes of decoder memory", reader->memory_budget);
        return NULL;
    }
    BlockHeader *block = malloc(sizeof(BlockHeader) + size);
    if (block == NULL) return NULL;
    block->size = size;
    reader->memory_in_use += size;
    return block + 1;
}

static void budget_free(png_structp png, png_voidp pointer) {
    if (pointer == NULL) return;
    Reader *reader = (Reader *)png_get_mem_ptr(png);
    BlockHeader *block = (BlockHeader *)pointer - 1;
    reader->memory_in_use -= block->size;
    free(block);
}

static uint32_t read_u32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

// The file offset past which the IDAT chunks hold more than `allowance` bytes of compressed data
// (SIZE_MAX when they never do). Walks the chunk list as it is in the bytes, stopping where it breaks.
static size_t idat_limit_offset(const uint8_t *data, size_t size, uint64_t allowance) {
    size_t offset = 8;
    uint64_t seen = 0;
    while (size - offset >= 8) {
        uint64_t length = read_u32(data + offset);
        int is_idat = memcmp(data + offset + 4, "IDAT", 4) == 0;
        size_t payload = offset + 8;
        if (is_idat) {
            if (seen + length > allowance) return payload + (size_t)(allowance - seen);
            seen += length;
        }
        if (length + 4 > size - payload) break;  // the chunk runs past the end: libpng reports the truncation
        offset = payload + (size_t)length + 4;
    }
    return SIZE_MAX;
}

// Bytes the zlib stream of the declared image inflates to: each row of each pass, plus its filter byte.
static uint64_t inflated_size(png_uint_32 width, png_uint_32 height, int bit_depth, int color_type, int interlaced) {
    int channels = color_type == PNG_COLOR_TYPE_RGB ? 3 : color_type == PNG_COLOR_TYPE_RGB_ALPHA ? 4
                 : color_type == PNG_COLOR_TYPE_GRAY_ALPHA ? 2 : 1;
    uint64_t bits = (uint64_t)bit_depth * channels;
    if (!interlaced) return (uint64_t)height * (1 + ((uint64_t)width * bits + 7) / 8);
    static const int x0[7] = {0, 4, 0, 2, 0, 1, 0}, y0[7] = {0, 0, 4, 0, 2, 0, 1};
    static const int dx[7] = {8, 8, 4, 4, 2, 2, 1}, dy[7] = {8, 8, 8, 4, 4, 2, 2};
    uint64_t total = 0;
    for (int p = 0; p < 7; p++) {
        uint64_t w = width > (png_uint_32)x0[p] ? (width - x0[p] + dx[p] - 1) / dx[p] : 0;
        uint64_t h = height > (png_uint_32)y0[p] ? (height - y0[p] + dy[p] - 1) / dy[p] : 0;
        if (w > 0) total += h * (1 + (w * bits + 7) / 8);
    }
    return total;
}

// libpng's default prints and aborts; this records the message and longjmps to our setjmp.
static void record_error(png_structp png, png_const_charp message) {
    Reader *reader = (Reader *)png_get_error_ptr(png);
    if (message != reader->message) snprintf(reader->message, sizeof reader->message, "%s", message);
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
    Reader reader = {.data = data, .size = size, .offset = 0, .idat_limit = SIZE_MAX,
                     .memory_budget = BASE_MEMORY_BUDGET};
    if (options->time_budget_ns > 0) {
        clock_gettime(CLOCK_MONOTONIC, &reader.deadline);
        uint64_t nanoseconds = (uint64_t)reader.deadline.tv_nsec + options->time_budget_ns;
        reader.deadline.tv_sec += (time_t)(nanoseconds / 1000000000u);
        reader.deadline.tv_nsec = (long)(nanoseconds % 1000000000u);
        reader.has_deadline = 1;
    }

    png_structp png = png_create_read_struct_2(PNG_LIBPNG_VER_STRING, &reader, record_error, ignore_warning,
                                               &reader, budget_malloc, budget_free);
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
    // Only IHDR, PLTE, tRNS, IDAT and IEND are read; every other chunk (text, ICC profiles, gamma: nothing
    // PIL's convert("RGB") uses) is skipped unread, so its length field costs no allocation.
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, NULL, -1);
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
    // libpng's own row buffers (current, previous and a spare row of up to 8 bytes per pixel) on top of the
    // base; our own rows below are allocated with malloc and bounded by the pixel limits.
    reader.memory_budget = BASE_MEMORY_BUDGET + 3 * ((size_t)width * 8 + 1);
    uint64_t needed = inflated_size(width, height, bit_depth, color_type, interlace != PNG_INTERLACE_NONE);
    reader.idat_limit = idat_limit_offset(data, size, needed + needed / 64 + IDAT_MARGIN);
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
            for (png_uint_32 y = 0; y < height; y++) {
                if (deadline_passed(&reader)) fail_over_time(png, &reader);
                png_read_row(png, decoded + decoded_row_bytes * y, NULL);
            }
        for (png_uint_32 y = 0; y < height; y++)
            row_to_rgb(decoded + decoded_row_bytes * y, pixels + out_row_bytes * y, width, channels, gray16);
    } else {
        for (png_uint_32 y = 0; y < height; y++) {
            if (deadline_passed(&reader)) fail_over_time(png, &reader);
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
