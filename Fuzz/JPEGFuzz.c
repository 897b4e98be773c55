// libFuzzer entry point for the JPEG decoder (Sources/CJPEG), through its public C API only.
// Built with AddressSanitizer and a malloc limit by tools/fuzz-jpeg.sh: a crash, a leak, a broken invariant
// (abort) or one allocation over the limit is a finding. The input is the JPEG file itself; each one is
// decoded at full size and DCT-scaled (target_shorter_side chosen from the input's length).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "CJPEG.h"
#include "FuzzCheck.h"

static void check_result(const CBAMJPEGImage *result, CBAMJPEGStatus status) {
    CHECK(status == result->status, "returned %d, result says %d", status, result->status);
    CHECK(memchr(result->message, 0, sizeof result->message) != NULL, "message not terminated");
    CHECK(status == CBAM_JPEG_OK || result->message[0] != 0, "status %d without a message", status);
    CHECK(status <= CBAM_JPEG_TIMED_OUT, "unknown status %d", status);
}

// Header, a refused wrong-size buffer, then the whole decode, under `options`.
static void decode(const uint8_t *data, size_t size, const CBAMJPEGOptions *options) {
    CBAMJPEGImage header = {0};
    CBAMJPEGStatus status = cbam_jpeg_read_header(data, size, options, &header);
    check_result(&header, status);
    CHECK(header.pixels == NULL, "read_header returned pixels");
    if (status != CBAM_JPEG_OK) return;
    CHECK(header.width > 0 && header.height > 0, "header %dx%d accepted", header.width, header.height);
    CHECK((uint64_t)header.source_width * (uint64_t)header.source_height <= options->max_pixels, "over the limit");
    CHECK(header.scale_denom == 1 || header.scale_denom == 2 || header.scale_denom == 4 || header.scale_denom == 8,
          "scale 1/%d", header.scale_denom);
    if (options->target_shorter_side > 0 && header.scale_denom > 1) {
        int shorter = header.width < header.height ? header.width : header.height;
        CHECK(shorter >= (int)options->target_shorter_side, "scaled below the target: %d < %u", shorter,
              options->target_shorter_side);
    }

    size_t capacity = (size_t)header.width * (size_t)header.height * 3;
    uint8_t spare[3];
    CBAMJPEGImage refused = {0};
    status = cbam_jpeg_decode_into(data, size, options, spare, capacity - 1 < sizeof spare ? capacity - 1 : sizeof spare,
                                   &refused);
    check_result(&refused, status);
    CHECK(status == CBAM_JPEG_INVALID_ARGUMENT || (options->time_budget_ns > 0 && status == CBAM_JPEG_TIMED_OUT),
          "a %zu-byte image decoded into a smaller buffer: %d", capacity, status);

    CBAMJPEGImage decoded = {0};
    status = cbam_jpeg_decode(data, size, options, &decoded);
    check_result(&decoded, status);
    CHECK(options->time_budget_ns > 0 || status != CBAM_JPEG_TIMED_OUT, "timed out without a time budget");
    if (status == CBAM_JPEG_OK) {
        CHECK(decoded.pixels != NULL, "decoded without pixels");
        CHECK(decoded.width == header.width && decoded.height == header.height, "size changed from the header");
        unsigned sum = 0;
        for (size_t i = 0; i < capacity; i++) sum += decoded.pixels[i];
        (void)sum;
    } else {
        CHECK(decoded.pixels == NULL, "failed decode left pixels");
    }
    cbam_jpeg_release(&decoded);
    cbam_jpeg_release(&decoded);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    // Small enough that a legitimate decode stays far below the malloc limit (4 Mpixels), so an allocation
    // over it is always the decoder's fault; the scan limit is the server's default.
    CBAMJPEGOptions full = {.max_pixels = 1u << 22, .max_side = 1u << 14, .max_scans = 1000};
    decode(data, size, &full);
    static const uint32_t targets[] = {1, 3, 8, 32};
    CBAMJPEGOptions scaled = full;
    scaled.target_shorter_side = targets[size % 4];
    decode(data, size, &scaled);
    // A budget that runs out at once: the decode leaves through the same error path, and must leak nothing.
    CBAMJPEGOptions hurried = full;
    hurried.time_budget_ns = 1;
    decode(data, size, &hurried);
    return 0;
}
