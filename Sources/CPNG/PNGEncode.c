#include "CPNG.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>

typedef struct {
    uint8_t *bytes;
    size_t size, capacity;
    int out_of_memory;
    char message[200];
} Writer;

static void append(png_structp png, png_bytep data, size_t length) {
    Writer *writer = (Writer *)png_get_io_ptr(png);
    if (writer->size + length > writer->capacity) {
        size_t capacity = writer->capacity ? writer->capacity : 4096;
        while (capacity < writer->size + length) capacity *= 2;
        uint8_t *grown = realloc(writer->bytes, capacity);
        if (grown == NULL) {
            writer->out_of_memory = 1;
            png_error(png, "out of memory while encoding PNG");
        }
        writer->bytes = grown;
        writer->capacity = capacity;
    }
    memcpy(writer->bytes + writer->size, data, length);
    writer->size += length;
}

static void flush_nothing(png_structp png) { (void)png; }

static void record_error(png_structp png, png_const_charp message) {
    Writer *writer = (Writer *)png_get_error_ptr(png);
    snprintf(writer->message, sizeof writer->message, "%s", message);
    png_longjmp(png, 1);
}

static void ignore_warning(png_structp png, png_const_charp message) {
    (void)png;
    (void)message;
}

CBAMPNGStatus cbam_png_encode(const uint8_t *pixels, int32_t width, int32_t height, int32_t channels,
                              int32_t compression_level, CBAMPNGEncoded *result) {
    memset(result, 0, sizeof *result);
    int color_type = channels == 1 ? PNG_COLOR_TYPE_GRAY
                   : channels == 3 ? PNG_COLOR_TYPE_RGB
                   : channels == 4 ? PNG_COLOR_TYPE_RGB_ALPHA : -1;
    if (pixels == NULL || width <= 0 || height <= 0 || color_type < 0 || width > 1000000 || height > 1000000) {
        result->status = CBAM_PNG_INVALID_ARGUMENT;
        snprintf(result->message, sizeof result->message,
                 "cannot encode a %dx%d image with %d channels (expected 1, 3 or 4 channels, positive sides)",
                 width, height, channels);
        return result->status;
    }
    Writer writer;
    memset(&writer, 0, sizeof writer);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &writer, record_error, ignore_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (png == NULL || info == NULL) {
        png_destroy_write_struct(&png, &info);
        result->status = CBAM_PNG_OUT_OF_MEMORY;
        snprintf(result->message, sizeof result->message, "out of memory creating the PNG encoder");
        return result->status;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(writer.bytes);
        result->status = writer.out_of_memory ? CBAM_PNG_OUT_OF_MEMORY : CBAM_PNG_CORRUPT;
        snprintf(result->message, sizeof result->message, "%s", writer.message);
        return result->status;
    }
    png_set_write_fn(png, &writer, append, flush_nothing);
    if (compression_level >= 0 && compression_level <= 9) png_set_compression_level(png, compression_level);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, color_type, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    size_t row_bytes = (size_t)width * (size_t)channels;
    for (int32_t y = 0; y < height; y++) png_write_row(png, pixels + row_bytes * (size_t)y);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);

    result->bytes = writer.bytes;
    result->size = writer.size;
    result->status = CBAM_PNG_OK;
    return CBAM_PNG_OK;
}

void cbam_png_release_encoded(CBAMPNGEncoded *encoded) {
    free(encoded->bytes);
    encoded->bytes = NULL;
    encoded->size = 0;
}
