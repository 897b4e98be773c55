// libFuzzer entry point for the PNG decoder (Sources/CPNG), through its public C API only.
// Built with AddressSanitizer and a malloc limit by tools/fuzz-png.sh: a crash, a leak, a broken invariant
// (abort) or one allocation over the limit is a finding. The input is the PNG file itself.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "CPNG.h"
#include "FuzzCheck.h"

// Small enough that a legitimate decode stays far below the malloc limit (4 Mpixels: 12 MB of RGB,
// at most 32 MB of interlaced 16-bit RGBA rows), so an allocation over it is always the decoder's fault.
static const CBAMPNGOptions limits = {.max_pixels = 1u << 22, .max_side = 1u << 14};

static void check_result(const CBAMPNGImage *result, CBAMPNGStatus status) {
    CHECK(status == result->status, "returned %d, result says %d", status, result->status);
    CHECK(memchr(result->message, 0, sizeof result->message) != NULL, "message not terminated");
    CHECK(status == CBAM_PNG_OK || result->message[0] != 0, "status %d without a message", status);
    CHECK(status <= CBAM_PNG_TIMED_OUT, "unknown status %d", status);
}

// A decode whose time budget runs out at once leaves through the same error path, and must leak nothing.
static void decode_without_time(const uint8_t *data, size_t size) {
    CBAMPNGOptions hurried = limits;
    hurried.time_budget_ns = 1;
    CBAMPNGImage decoded = {0};
    CBAMPNGStatus status = cbam_png_decode(data, size, &hurried, &decoded);
    check_result(&decoded, status);
    CHECK((status == CBAM_PNG_OK) == (decoded.pixels != NULL), "status %d with pixels %p", status, decoded.pixels);
    cbam_png_release(&decoded);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    decode_without_time(data, size);
    CBAMPNGImage header = {0};
    CBAMPNGStatus status = cbam_png_read_header(data, size, &limits, &header);
    check_result(&header, status);
    CHECK(header.pixels == NULL, "read_header returned pixels");
    if (status != CBAM_PNG_OK) return 0;
    CHECK(header.width > 0 && header.height > 0, "header %dx%d accepted", header.width, header.height);
    CHECK((uint64_t)header.width * (uint64_t)header.height <= limits.max_pixels, "over the pixel limit");

    size_t capacity = (size_t)header.width * (size_t)header.height * 3;
    // A wrong capacity is refused before a single row is decoded.
    uint8_t spare[3];
    CBAMPNGImage refused = {0};
    status = cbam_png_decode_into(data, size, &limits, spare, capacity - 1 < sizeof spare ? capacity - 1 : sizeof spare,
                                  &refused);
    check_result(&refused, status);
    CHECK(status == CBAM_PNG_INVALID_ARGUMENT, "a %zu-byte image decoded into a smaller buffer: %d", capacity, status);

    CBAMPNGImage decoded = {0};
    status = cbam_png_decode(data, size, &limits, &decoded);
    check_result(&decoded, status);
    CHECK(status != CBAM_PNG_TIMED_OUT, "timed out without a time budget");
    if (status == CBAM_PNG_OK) {
        CHECK(decoded.pixels != NULL, "decoded without pixels");
        CHECK(decoded.width == header.width && decoded.height == header.height, "size changed from the header");
        // Every byte was written: reading them all lets ASan and MSan-style checks see the buffer.
        unsigned sum = 0;
        for (size_t i = 0; i < capacity; i++) sum += decoded.pixels[i];
        (void)sum;
    } else {
        CHECK(decoded.pixels == NULL, "failed decode left pixels");
    }
    cbam_png_release(&decoded);
    cbam_png_release(&decoded);
    return 0;
}
