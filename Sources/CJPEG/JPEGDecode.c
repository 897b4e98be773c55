#include "CJPEG.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jpeglib.h>
#include <jerror.h>

// libjpeg's default error manager prints and calls exit(); this one records and longjmps back here.
typedef struct {
    struct jpeg_error_mgr base;
    jmp_buf escape;
    CBAMJPEGStatus status;          // set before longjmp by non-libjpeg failures
    int reading_header;             // inside jpeg_read_header
    char message[JMSG_LENGTH_MAX];
} DecoderErrors;

// Bounds the work of one decode: the number of scans, and the caller's deadline (checked for each row
// delivered and each row of coefficients read).
typedef struct {
    struct jpeg_progress_mgr base;
    DecoderErrors *errors;
    uint32_t max_scans;
    int has_deadline;
    struct timespec deadline;
} WorkLimit;

static void record_error_and_escape(j_common_ptr cinfo) {
    DecoderErrors *errors = (DecoderErrors *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, errors->message);
    // Valid JPEG flavours an 8-bit libjpeg cannot read (12-bit, lossless) are not corrupt files.
    if (cinfo->err->msg_code == JERR_BAD_PRECISION || cinfo->err->msg_code == JERR_SOF_UNSUPPORTED)
        errors->status = CBAM_JPEG_UNSUPPORTED;
    longjmp(errors->escape, 1);
}

// Replaces the default that writes to stderr: keeps the text instead.
static void record_message(j_common_ptr cinfo) {
    DecoderErrors *errors = (DecoderErrors *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, errors->message);
}

// Warnings (level -1) are recoverable, as PIL treats them (extraneous bytes, say), except premature end of
// data: the file running out (JWRN_JPEG_EOF) or a marker where scan data should be (JWRN_HIT_MARKER, a frame
// larger than its scans). libjpeg would go on and fill the rest of the frame with gray, for as many rows as the
// header claims; PIL refuses such files ("image file is truncated"), and so does this decoder, at once.
static void record_warning(j_common_ptr cinfo, int level) {
    DecoderErrors *errors = (DecoderErrors *)cinfo->err;
    if (level >= 0) return;
    int code = cinfo->err->msg_code;
    if (code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER) {
        j_decompress_ptr dinfo = (j_decompress_ptr)cinfo;
        // After corrupt-data warnings the data was garbage rather than cut short.
        errors->status = cinfo->err->num_warnings == 0 ? CBAM_JPEG_TRUNCATED : CBAM_JPEG_CORRUPT;
        if (errors->reading_header)
            snprintf(errors->message, sizeof errors->message, "JPEG data ends inside its header (truncated file)");
        else
            snprintf(errors->message, sizeof errors->message,
                     "JPEG data ends before its %ux%u image does (truncated file: premature end of data%s "
                     "at row %u, scan %d)", dinfo->image_width, dinfo->image_height,
                     code == JWRN_HIT_MARKER ? " segment" : "", dinfo->output_scanline, dinfo->input_scan_number);
        longjmp(errors->escape, 1);
    }
    cinfo->err->num_warnings++;
}

static void limit_work(j_common_ptr cinfo) {
    WorkLimit *limit = (WorkLimit *)cinfo->progress;
    j_decompress_ptr dinfo = (j_decompress_ptr)cinfo;
    if (limit->max_scans > 0 && (uint32_t)dinfo->input_scan_number > limit->max_scans) {
        snprintf(limit->errors->message, sizeof limit->errors->message,
                 "progressive JPEG has more than %u scans", limit->max_scans);
        limit->errors->status = CBAM_JPEG_TOO_MANY_SCANS;
        longjmp(limit->errors->escape, 1);
    }
    if (limit->has_deadline) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec > limit->deadline.tv_sec ||
            (now.tv_sec == limit->deadline.tv_sec && now.tv_nsec >= limit->deadline.tv_nsec)) {
            snprintf(limit->errors->message, sizeof limit->errors->message,
                     "decoding the JPEG took longer than its time budget");
            limit->errors->status = CBAM_JPEG_TIMED_OUT;
            longjmp(limit->errors->escape, 1);
        }
    }
}

static inline uint8_t mul_div_255(unsigned a, unsigned b) {
    unsigned t = a * b + 128;
    return (uint8_t)(((t >> 8) + t) >> 8);
}

// PIL reads every CMYK JPEG as Adobe-inverted ("CMYK;I") and converts to RGB as (255-C)(255-K)/255.
static void cmyk_row_to_rgb(const uint8_t *cmyk, uint8_t *rgb, unsigned width) {
    for (unsigned x = 0; x < width; x++) {
        unsigned c = 255u - cmyk[0], m = 255u - cmyk[1], y = 255u - cmyk[2], k = 255u - cmyk[3];
        unsigned nk = 255u - k;
        rgb[0] = (uint8_t)(nk - mul_div_255(c, nk));
        rgb[1] = (uint8_t)(nk - mul_div_255(m, nk));
        rgb[2] = (uint8_t)(nk - mul_div_255(y, nk));
        cmyk += 4;
        rgb += 3;
    }
}

static void fail(CBAMJPEGImage *result, CBAMJPEGStatus status, const char *message) {
    result->status = status;
    snprintf(result->message, sizeof result->message, "%s", message);
}

// One decode in progress: libjpeg's state and the managers it calls back, on the heap so that the header read by
// cbam_jpeg_open is the one cbam_jpeg_read_pixels continues from. Every entry point arms `errors.escape` with its
// own setjmp before calling libjpeg, so a longjmp only ever lands in the C frame that called it.
struct CBAMJPEGDecoder {
    struct jpeg_decompress_struct cinfo;
    DecoderErrors errors;
    WorkLimit work_limit;
    int is_cmyk;
};

static void fail_from_errors(CBAMJPEGDecoder *decoder, CBAMJPEGImage *result) {
    result->status = decoder->errors.status == CBAM_JPEG_OK ? CBAM_JPEG_CORRUPT : decoder->errors.status;
    snprintf(result->message, sizeof result->message, "%s", decoder->errors.message);
}

CBAMJPEGDecoder *cbam_jpeg_open(const uint8_t *data, size_t size, const CBAMJPEGOptions *options,
                                CBAMJPEGImage *result) {
    memset(result, 0, sizeof *result);
    if (data == NULL || size == 0) {
        fail(result, CBAM_JPEG_TRUNCATED, "JPEG data is empty");
        return NULL;
    }
    CBAMJPEGDecoder *decoder = calloc(1, sizeof *decoder);
    if (decoder == NULL) {
        fail(result, CBAM_JPEG_OUT_OF_MEMORY, "out of memory for the JPEG decoder");
        return NULL;
    }
    struct jpeg_decompress_struct *cinfo = &decoder->cinfo;
    cinfo->err = jpeg_std_error(&decoder->errors.base);
    decoder->errors.base.error_exit = record_error_and_escape;
    decoder->errors.base.output_message = record_message;
    decoder->errors.base.emit_message = record_warning;

    if (setjmp(decoder->errors.escape)) {
        fail_from_errors(decoder, result);
        cbam_jpeg_close(decoder);
        return NULL;
    }

    jpeg_create_decompress(cinfo);
    WorkLimit *work_limit = &decoder->work_limit;
    work_limit->base.progress_monitor = limit_work;
    work_limit->errors = &decoder->errors;
    work_limit->max_scans = options->max_scans;
    if (options->time_budget_ns > 0) {
        clock_gettime(CLOCK_MONOTONIC, &work_limit->deadline);
        uint64_t nanoseconds = (uint64_t)work_limit->deadline.tv_nsec + options->time_budget_ns;
        work_limit->deadline.tv_sec += (time_t)(nanoseconds / 1000000000u);
        work_limit->deadline.tv_nsec = (long)(nanoseconds % 1000000000u);
        work_limit->has_deadline = 1;
    }
    cinfo->progress = &work_limit->base;

    jpeg_mem_src(cinfo, data, (unsigned long)size);
    decoder->errors.reading_header = 1;
    jpeg_read_header(cinfo, TRUE);
    decoder->errors.reading_header = 0;

    result->source_width = (int32_t)cinfo->image_width;
    result->source_height = (int32_t)cinfo->image_height;
    result->components = cinfo->num_components;
    uint64_t source_pixels = (uint64_t)cinfo->image_width * cinfo->image_height;
    if (cinfo->image_width > options->max_side || cinfo->image_height > options->max_side ||
        source_pixels > options->max_pixels) {
        result->status = CBAM_JPEG_TOO_LARGE;
        snprintf(result->message, sizeof result->message,
                 "JPEG is %ux%u (%llu pixels); the limit is %llu pixels and %u per side",
                 cinfo->image_width, cinfo->image_height, (unsigned long long)source_pixels,
                 (unsigned long long)options->max_pixels, options->max_side);
        cbam_jpeg_close(decoder);
        return NULL;
    }

    switch (cinfo->jpeg_color_space) {
    case JCS_GRAYSCALE: case JCS_RGB: case JCS_YCbCr:
        cinfo->out_color_space = JCS_RGB;   // gray is replicated, as PIL's convert("RGB") does
        break;
    case JCS_CMYK: case JCS_YCCK:          // YCCK means an Adobe marker with transform 2
        cinfo->out_color_space = JCS_CMYK;
        decoder->is_cmyk = 1;
        break;
    default:
        result->status = CBAM_JPEG_UNSUPPORTED;
        snprintf(result->message, sizeof result->message,
                 "JPEG with %d components is not supported (expected 1, 3 or 4)", cinfo->num_components);
        cbam_jpeg_close(decoder);
        return NULL;
    }
    // PIL's defaults, so that pixels match the training pipeline exactly.
    cinfo->dct_method = JDCT_ISLOW;
    cinfo->do_fancy_upsampling = TRUE;

    cinfo->scale_num = 1;
    cinfo->scale_denom = 1;
    if (options->target_shorter_side > 0) {
        // The largest reduction that keeps the shorter side >= the target: 1/d when the image is at least
        // d times the target (then libjpeg's ceil(side / d) is >= the target too).
        static const unsigned denominators[] = {8, 4, 2};
        uint64_t shorter = cinfo->image_width < cinfo->image_height ? cinfo->image_width : cinfo->image_height;
        for (int i = 0; i < 3; i++) {
            if (shorter >= (uint64_t)denominators[i] * options->target_shorter_side) {
                cinfo->scale_denom = denominators[i];
                break;
            }
        }
    }

    jpeg_calc_output_dimensions(cinfo);
    result->width = (int32_t)cinfo->output_width;
    result->height = (int32_t)cinfo->output_height;
    result->scale_denom = (int32_t)cinfo->scale_denom;
    result->status = CBAM_JPEG_OK;
    return decoder;
}

CBAMJPEGStatus cbam_jpeg_read_pixels(CBAMJPEGDecoder *decoder, uint8_t *destination, size_t capacity,
                                     CBAMJPEGImage *result) {
    struct jpeg_decompress_struct *cinfo = &decoder->cinfo;
    unsigned width = cinfo->output_width, height = cinfo->output_height;
    size_t row_bytes = (size_t)width * 3;
    result->width = (int32_t)width;
    result->height = (int32_t)height;
    result->source_width = (int32_t)cinfo->image_width;
    result->source_height = (int32_t)cinfo->image_height;
    result->scale_denom = (int32_t)cinfo->scale_denom;
    result->components = cinfo->num_components;
    if (destination == NULL || capacity != row_bytes * height) {
        result->status = CBAM_JPEG_INVALID_ARGUMENT;
        snprintf(result->message, sizeof result->message,
                 "destination holds %zu bytes, the %ux%u image needs %zu", destination ? capacity : 0, width, height,
                 row_bytes * height);
        return result->status;
    }
    if (setjmp(decoder->errors.escape)) {
        fail_from_errors(decoder, result);
        return result->status;
    }

    jpeg_start_decompress(cinfo);
    // Scratch rows live in libjpeg's pool, which jpeg_destroy_decompress frees on every path.
    JSAMPARRAY cmyk_row = decoder->is_cmyk
        ? (*cinfo->mem->alloc_sarray)((j_common_ptr)cinfo, JPOOL_IMAGE, width * 4, 1) : NULL;

    while (cinfo->output_scanline < height) {
        uint8_t *out = destination + (size_t)cinfo->output_scanline * row_bytes;
        if (decoder->is_cmyk) {
            jpeg_read_scanlines(cinfo, cmyk_row, 1);
            cmyk_row_to_rgb(cmyk_row[0], out, width);
        } else {
            jpeg_read_scanlines(cinfo, &out, 1);
        }
    }
    // Not jpeg_finish_decompress: what follows the last scanline (trailing bytes, a missing EOI)
    // does not change the pixels, and PIL ignores it too.
    result->status = CBAM_JPEG_OK;
    result->message[0] = 0;
    return CBAM_JPEG_OK;
}

void cbam_jpeg_close(CBAMJPEGDecoder *decoder) {
    if (decoder == NULL) return;
    jpeg_destroy_decompress(&decoder->cinfo);
    free(decoder);
}

CBAMJPEGStatus cbam_jpeg_read_header(const uint8_t *data, size_t size, const CBAMJPEGOptions *options,
                                     CBAMJPEGImage *result) {
    cbam_jpeg_close(cbam_jpeg_open(data, size, options, result));
    return result->status;
}

CBAMJPEGStatus cbam_jpeg_decode_into(const uint8_t *data, size_t size, const CBAMJPEGOptions *options,
                                     uint8_t *destination, size_t capacity, CBAMJPEGImage *result) {
    if (destination == NULL) {
        memset(result, 0, sizeof *result);
        fail(result, CBAM_JPEG_INVALID_ARGUMENT, "no destination buffer");
        return result->status;
    }
    CBAMJPEGDecoder *decoder = cbam_jpeg_open(data, size, options, result);
    if (decoder == NULL) return result->status;
    cbam_jpeg_read_pixels(decoder, destination, capacity, result);
    cbam_jpeg_close(decoder);
    return result->status;
}

CBAMJPEGStatus cbam_jpeg_decode(const uint8_t *data, size_t size, const CBAMJPEGOptions *options,
                                CBAMJPEGImage *result) {
    CBAMJPEGDecoder *decoder = cbam_jpeg_open(data, size, options, result);
    if (decoder == NULL) return result->status;
    size_t capacity = (size_t)result->width * (size_t)result->height * 3;
    uint8_t *pixels = malloc(capacity ? capacity : 1);
    if (pixels == NULL) {
        cbam_jpeg_close(decoder);
        fail(result, CBAM_JPEG_OUT_OF_MEMORY, "out of memory for the decoded image");
        return result->status;
    }
    if (cbam_jpeg_read_pixels(decoder, pixels, capacity, result) != CBAM_JPEG_OK) {
        free(pixels);
    } else {
        result->pixels = pixels;
    }
    cbam_jpeg_close(decoder);
    return result->status;
}

void cbam_jpeg_release(CBAMJPEGImage *image) {
    free(image->pixels);
    image->pixels = NULL;
}
