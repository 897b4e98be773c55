#!/usr/bin/env python3
"""Writes the CBAMImage test fixtures: every JPEG/PNG variant the decoder must read, bad files it must
refuse, and the PIL / torchvision reference outputs the Swift tests compare against.

    python3 tools/make_image_fixtures.py [--out Tests/CBAMImageTests/Fixtures]
    python3 tools/make_image_fixtures.py --fuzz-corpus Fuzz

The second form writes the fuzzers' seed corpora instead (Fuzz/corpus-png, Fuzz/corpus-jpeg, Fuzz/corpus-oip:
small PngSuite-like files of every PNG colour type, bit depth and interlace, baseline/progressive/CMYK JPEGs,
tiny sizes, truncations and bit flips, Open Inference Protocol requests) and the hand-made regression files
of known findings (Fuzz/regressions/); it needs only Pillow, numpy and, for CMYK JPEGs, a C compiler.

The fixtures need Pillow, numpy, torch + torchvision, the libjpeg-turbo programs (cjpeg, jpegtran) and a C compiler
with libjpeg headers (for CMYK/YCCK files, which neither PIL nor cjpeg can write). Deterministic: the
same tools give the same bytes. The manifest (manifest.json) lists every case and what is expected.
"""
import argparse
import io
import json
import os
import shutil
import struct
import subprocess
import tempfile
import zlib

import numpy as np
from PIL import Image, ImageOps

from cbamtools.datasets import CIFAR10_MEAN, CIFAR10_STD

# A small program that writes 4-component JPEGs from raw CMYK: CMYK with or without the Adobe marker, or YCCK.
CMYK_WRITER_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
int main(int argc, char **argv) {
    if (argc != 6) { fprintf(stderr, "usage: w h cmyk|ycck adobe(0/1) out.jpg < raw\n"); return 2; }
    int w = atoi(argv[1]), h = atoi(argv[2]), adobe = atoi(argv[4]);
    size_t n = (size_t)w * h * 4;
    unsigned char *raw = malloc(n);
    if (fread(raw, 1, n, stdin) != n) return 3;
    FILE *out = fopen(argv[5], "wb");
    struct jpeg_compress_struct c; struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e); jpeg_create_compress(&c); jpeg_stdio_dest(&c, out);
    c.image_width = w; c.image_height = h; c.input_components = 4; c.in_color_space = JCS_CMYK;
    jpeg_set_defaults(&c);
    jpeg_set_colorspace(&c, strcmp(argv[3], "ycck") == 0 ? JCS_YCCK : JCS_CMYK);
    c.write_Adobe_marker = adobe ? TRUE : FALSE;
    jpeg_set_quality(&c, 92, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = raw + (size_t)c.next_scanline * w * 4;
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c); jpeg_destroy_compress(&c); fclose(out); free(raw);
    return 0;
}
"""


def scene(width, height, seed=7):
    """A photo-like test picture: smooth gradients, hard-edged shapes, fine stripes and sensor-like noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    u, v = x / width, y / height
    img = np.stack([
        200 * u + 30 * np.sin(6 * v),
        160 * v + 60 * np.cos(4 * u + 1),
        120 + 80 * np.sin(3 * (u + v)),
    ], axis=-1)
    for _ in range(12):
        cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(0.05, 0.25) * min(width, height)
        colour = rng.uniform(0, 255, 3)
        img[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = colour
    stripes = (x > 0.6 * width) & (y < 0.35 * height)
    img[stripes] = np.where(((x[stripes] + y[stripes]) // 2 % 2 == 0)[:, None], 235.0, 20.0)
    img += rng.normal(0, 6, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).round().astype(np.uint8), "RGB")


# ---------------------------------------------------------------------------------------------------- PNG writer
# PIL cannot write 2/4-bit gray, 16-bit colour or interlaced PNGs, so the tool writes PNG itself.

def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def pack_row(samples, bit_depth):
    """samples: 1-D uint array of one row's samples (all channels interleaved)."""
    if bit_depth == 16:
        return samples.astype(">u2").tobytes()
    if bit_depth == 8:
        return samples.astype(np.uint8).tobytes()
    per_byte = 8 // bit_depth
    padded = np.zeros(-(-len(samples) // per_byte) * per_byte, dtype=np.uint8)
    padded[:len(samples)] = samples
    padded = padded.reshape(-1, per_byte)
    out = np.zeros(len(padded), dtype=np.uint8)
    for i in range(per_byte):
        out |= (padded[:, i] << (8 - bit_depth * (i + 1))).astype(np.uint8)
    return out.tobytes()


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def write_png(samples, colour_type, bit_depth, interlaced=False, palette=None, trns=None, exif=None):
    """samples: HxWxC array of raw sample values (palette indices for colour type 3)."""
    h, w = samples.shape[:2]
    raw = bytearray()
    passes = ADAM7 if interlaced else [(0, 0, 1, 1)]
    for x0, y0, dx, dy in passes:
        sub = samples[y0::dy, x0::dx]
        if sub.shape[0] == 0 or sub.shape[1] == 0:
            continue
        for row in sub:
            raw += b"\x00" + pack_row(row.reshape(-1), bit_depth)
    out = b"\x89PNG\r\n\x1a\n"
    out += png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, colour_type, 0, 0, 1 if interlaced else 0))
    if palette is not None:
        out += png_chunk(b"PLTE", bytes(np.asarray(palette, dtype=np.uint8).reshape(-1)))
    if trns is not None:
        out += png_chunk(b"tRNS", trns)
    if exif is not None:
        out += png_chunk(b"eXIf", exif)
    out += png_chunk(b"IDAT", zlib.compress(bytes(raw), 9))
    out += png_chunk(b"IEND", b"")
    return out


# ------------------------------------------------------------------------------------------------------ the tool

class Fixtures:
    def __init__(self, out):
        self.out = out
        self.manifest = {"decode": [], "errors": [], "preprocess": []}
        self.references = {}
        self.work = tempfile.mkdtemp(prefix="cbam-fixtures-")

    def write(self, relpath, data):
        path = os.path.join(self.out, relpath)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        return relpath

    def save_npy(self, relpath, array):
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(array))
        return self.write(relpath, buf.getvalue())

    def pil_reference(self, data, exif_transpose):
        im = Image.open(io.BytesIO(data))
        if exif_transpose:
            im = ImageOps.exif_transpose(im)
        return np.asarray(im.convert("RGB"))

    def decode_case(self, relpath, data, note, exif_transpose=False):
        """A file that must decode to exactly PIL's pixels."""
        self.write(relpath, data)
        ref = self.pil_reference(data, exif_transpose)
        key = (ref.shape, ref.tobytes())  # identical pixels (e.g. interlaced vs not) share one reference
        refpath = self.references.get(key)
        if refpath is None:
            refpath = self.save_npy("reference/" + relpath.replace("/", "_") + ".npy", ref)
            self.references[key] = refpath
        self.manifest["decode"].append({"file": relpath, "reference": refpath, "exif_transpose": exif_transpose,
                                        "note": note})

    def error_case(self, relpath, data, code, note, **limits):
        self.write(relpath, data)
        entry = {"file": relpath, "code": code, "note": note}
        entry.update(limits)
        self.manifest["errors"].append(entry)

    def run(self, *args, stdin=None):
        return subprocess.run(args, input=stdin, check=True, capture_output=True).stdout

    def ppm(self, im):
        path = os.path.join(self.work, "in.ppm" if im.mode == "RGB" else "in.pgm")
        im.save(path)
        return path


def make_jpegs(fx, base):
    ppm = fx.ppm(base)
    def pil(**kw):
        buf = io.BytesIO()
        base.save(buf, "JPEG", **kw)
        return buf.getvalue()
    fx.decode_case("jpeg/pil_444.jpg", pil(quality=90, subsampling=0), "PIL baseline 4:4:4")
    fx.decode_case("jpeg/pil_422.jpg", pil(quality=90, subsampling=1), "PIL baseline 4:2:2")
    fx.decode_case("jpeg/pil_420.jpg", pil(quality=90, subsampling=2), "PIL baseline 4:2:0")
    fx.decode_case("jpeg/pil_progressive.jpg", pil(quality=85, progressive=True), "PIL progressive 4:2:0")
    fx.decode_case("jpeg/pil_optimized.jpg", pil(quality=75, optimize=True), "PIL optimized Huffman")
    gray = io.BytesIO()
    base.convert("L").save(gray, "JPEG", quality=90)
    fx.decode_case("jpeg/pil_gray.jpg", gray.getvalue(), "PIL grayscale")

    cj = lambda *a: fx.run("cjpeg", "-quality", "88", *a, ppm)
    fx.decode_case("jpeg/cjpeg_arithmetic.jpg", cj("-arithmetic"), "cjpeg -arithmetic")
    fx.decode_case("jpeg/cjpeg_arithmetic_progressive.jpg", cj("-arithmetic", "-progressive"),
                   "cjpeg -arithmetic -progressive")
    fx.decode_case("jpeg/cjpeg_progressive.jpg", cj("-progressive"), "cjpeg -progressive")
    fx.decode_case("jpeg/cjpeg_restart_1row.jpg", cj("-restart", "1"), "cjpeg -restart 1 (every MCU row)")
    fx.decode_case("jpeg/cjpeg_restart_3blocks.jpg", cj("-restart", "3B"), "cjpeg -restart 3B")
    for sample, name in [("1x1", "444"), ("2x1", "422"), ("1x2", "440"), ("2x2", "420"), ("4x1", "411"),
                         ("4x2", "410")]:
        fx.decode_case(f"jpeg/cjpeg_sample_{name}.jpg", cj("-sample", sample), f"cjpeg -sample {sample}")
    fx.decode_case("jpeg/cjpeg_rgb.jpg", cj("-rgb"), "cjpeg -rgb (RGB colour space, no YCbCr transform)")
    fx.decode_case("jpeg/cjpeg_gray.jpg", cj("-grayscale"), "cjpeg -grayscale")
    baseline = cj()
    fx.decode_case("jpeg/jpegtran_progressive.jpg", fx.run("jpegtran", "-progressive", stdin=baseline),
                   "jpegtran -progressive of a baseline file")
    fx.decode_case("jpeg/jpegtran_arithmetic_restart.jpg",
                   fx.run("jpegtran", "-arithmetic", "-restart", "2", stdin=baseline),
                   "jpegtran -arithmetic -restart 2")

    # Four-component files. PIL reads every CMYK JPEG as Adobe-inverted ("CMYK;I").
    exe = os.path.join(fx.work, "cmyk_writer")
    src = os.path.join(fx.work, "cmyk_writer.c")
    with open(src, "w") as f:
        f.write(CMYK_WRITER_C)
    subprocess.run(["cc", "-O1", "-o", exe, src, "-ljpeg"], check=True)
    rgb = np.asarray(base).astype(np.int32)
    k = 255 - rgb.max(axis=-1, keepdims=True)
    cmyk = np.concatenate([255 - rgb - k, k], axis=-1).clip(0, 255).astype(np.uint8)
    inverted = (255 - cmyk).tobytes()  # Adobe convention: stored inverted
    h, w = cmyk.shape[:2]
    def cmyk_jpeg(kind, adobe):
        path = os.path.join(fx.work, "cmyk.jpg")
        fx.run(exe, str(w), str(h), kind, str(adobe), path, stdin=inverted)
        return open(path, "rb").read()
    fx.decode_case("jpeg/cmyk_adobe.jpg", cmyk_jpeg("cmyk", 1), "CMYK with Adobe marker (transform 0), inverted")
    fx.decode_case("jpeg/ycck_adobe.jpg", cmyk_jpeg("ycck", 1), "YCCK (Adobe transform 2), inverted")
    fx.decode_case("jpeg/cmyk_no_adobe.jpg", cmyk_jpeg("cmyk", 0), "CMYK without Adobe marker (PIL still inverts)")
    pil_cmyk = io.BytesIO()
    base.convert("CMYK").save(pil_cmyk, "JPEG", quality=90)
    fx.decode_case("jpeg/pil_cmyk.jpg", pil_cmyk.getvalue(), "PIL CMYK JPEG")
    return baseline


def make_exif(fx, base):
    small = base.resize((40, 24), Image.NEAREST)
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        buf = io.BytesIO()
        small.save(buf, "JPEG", quality=95, subsampling=0, exif=exif.tobytes())
        fx.decode_case(f"exif/orientation_{orientation}.jpg", buf.getvalue(), f"EXIF orientation {orientation}",
                       exif_transpose=True)
    # Big-endian TIFF header, written by hand: orientation 6.
    tiff = b"MM\x00\x2a\x00\x00\x00\x08" + struct.pack(">H", 1) + struct.pack(">HHIHH", 0x0112, 3, 1, 6, 0) + b"\0\0\0\0"
    buf = io.BytesIO()
    small.save(buf, "JPEG", quality=95, subsampling=0, exif=b"Exif\x00\x00" + tiff)
    fx.decode_case("exif/orientation_6_big_endian.jpg", buf.getvalue(), "EXIF orientation 6, Motorola order",
                   exif_transpose=True)
    # PIL's getexif() falls back on XMP's tiff:Orientation when EXIF has no orientation tag.
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="%d"/></rdf:RDF></x:xmpmeta>')
    buf = io.BytesIO()
    small.save(buf, "JPEG", quality=95, subsampling=0, xmp=xmp % 8)
    fx.decode_case("exif/xmp_orientation_8.jpg", buf.getvalue(), "XMP tiff:Orientation 8, no EXIF", exif_transpose=True)
    exif = Image.Exif()
    exif[0x0112] = 3
    buf = io.BytesIO()
    small.save(buf, "JPEG", quality=95, subsampling=0, exif=exif.tobytes(), xmp=xmp % 6)
    fx.decode_case("exif/exif_3_xmp_6.jpg", buf.getvalue(), "EXIF orientation 3 wins over XMP 6", exif_transpose=True)
    png = write_png(np.asarray(small), 2, 8, exif=tiff)
    fx.decode_case("exif/orientation_6.png", png, "PNG eXIf chunk, orientation 6", exif_transpose=True)


def make_pngs(fx, base):
    rgb = np.asarray(base).astype(np.uint16)
    h, w = rgb.shape[:2]
    rng = np.random.default_rng(3)
    gray8 = np.asarray(base.convert("L")).astype(np.uint16)
    alpha8 = rng.integers(0, 256, (h, w), dtype=np.uint16)
    wide16 = lambda a8: a8 * 257 + rng.integers(0, 257, a8.shape, dtype=np.uint16)  # low byte not a copy
    for interlaced in (False, True):
        tag = "_interlaced" if interlaced else ""
        def case(name, samples, ct, depth, note, **kw):
            fx.decode_case(f"png/{name}{tag}.png", write_png(samples, ct, depth, interlaced, **kw),
                           note + (", Adam7 interlaced" if interlaced else ""))
        for depth in (1, 2, 4, 8):
            case(f"gray{depth}", (gray8 >> (8 - depth))[..., None], 0, depth, f"gray {depth}-bit")
        g16 = np.where(rng.random((h, w)) < 0.3, gray8, wide16(gray8))  # both <256 and >255 values
        case("gray16", g16[..., None], 0, 16, "gray 16-bit (PIL clips I;16 to 255 in convert('RGB'))")
        case("gray8_trns", gray8[..., None], 0, 8, "gray 8-bit with tRNS", trns=struct.pack(">H", int(gray8[0, 0])))
        case("gray16_trns", g16[..., None], 0, 16, "gray 16-bit with tRNS", trns=struct.pack(">H", int(g16[0, 0])))
        case("rgb8", rgb, 2, 8, "RGB 8-bit")
        case("rgb16", wide16(rgb), 2, 16, "RGB 16-bit")
        case("rgb8_trns", rgb, 2, 8, "RGB 8-bit with tRNS", trns=struct.pack(">HHH", *map(int, rgb[0, 0])))
        for depth in (1, 2, 4, 8):
            n = 1 << depth
            palette = rng.integers(0, 256, (n, 3))
            indices = (gray8 * n // 256)[..., None]
            case(f"palette{depth}", indices, 3, depth, f"palette {depth}-bit", palette=palette)
            case(f"palette{depth}_trns", indices, 3, depth, f"palette {depth}-bit with tRNS", palette=palette,
                 trns=bytes(rng.integers(0, 256, max(1, n // 2), dtype=np.uint8)))
        case("gray_alpha8", np.stack([gray8, alpha8], -1), 4, 8, "gray+alpha 8-bit")
        case("gray_alpha16", np.stack([wide16(gray8), wide16(alpha8)], -1), 4, 16, "gray+alpha 16-bit")
        case("rgba8", np.concatenate([rgb, alpha8[..., None]], -1), 6, 8, "RGBA 8-bit")
        case("rgba16", np.concatenate([wide16(rgb), wide16(alpha8)[..., None]], -1), 6, 16, "RGBA 16-bit")
    buf = io.BytesIO()
    base.save(buf, "PNG")
    fx.decode_case("png/pil_rgb.png", buf.getvalue(), "PIL RGB PNG")


def make_bad(fx, base, baseline_jpeg):
    fx.error_case("bad/empty.jpg", b"", "empty_image", "0 bytes")
    fx.error_case("bad/text.jpg", b"this is not an image, just text named .jpg\n", "unsupported_format", "text")
    for fmt, ext in [("GIF", "gif"), ("WEBP", "webp"), ("BMP", "bmp"), ("TIFF", "tiff")]:
        buf = io.BytesIO()
        base.save(buf, fmt)
        fx.error_case(f"bad/image.{ext}", buf.getvalue(), "unsupported_format", fmt)
    fx.error_case("bad/truncated_baseline.jpg", baseline_jpeg[: len(baseline_jpeg) * 6 // 10], "truncated_image",
                  "baseline JPEG cut at 60%")
    progressive = fx.run("jpegtran", "-progressive", stdin=baseline_jpeg)
    fx.error_case("bad/truncated_progressive.jpg", progressive[: len(progressive) // 2], "truncated_image",
                  "progressive JPEG cut at 50%")
    fx.error_case("bad/truncated_header.jpg", baseline_jpeg[:100], "truncated_image", "JPEG cut inside its tables")
    fx.error_case("bad/only_soi.jpg", b"\xff\xd8\xff", "truncated_image", "JPEG SOI and nothing else")
    sof = baseline_jpeg.index(b"\xff\xc0")
    zero_height = bytearray(baseline_jpeg)
    zero_height[sof + 5:sof + 7] = b"\x00\x00"
    fx.error_case("bad/zero_height.jpg", bytes(zero_height), "corrupt_image", "SOF height 0")
    bad_huffman = bytearray(baseline_jpeg)
    dht = bad_huffman.index(b"\xff\xc4")
    bad_huffman[dht + 5:dht + 21] = b"\xff" * 16  # code counts that overflow the Huffman table
    fx.error_case("bad/bad_huffman_table.jpg", bytes(bad_huffman), "corrupt_image", "DHT with impossible counts")
    twelve_bit = bytearray(baseline_jpeg)
    twelve_bit[sof + 4] = 12  # sample precision 12: valid JPEG, but not for an 8-bit libjpeg (nor PIL)
    fx.error_case("bad/precision_12.jpg", bytes(twelve_bit), "unsupported_image", "12-bit JPEG")
    lossless = bytearray(baseline_jpeg)
    lossless[sof + 1] = 0xC3  # SOF3: lossless process
    fx.error_case("bad/lossless_sof3.jpg", bytes(lossless), "unsupported_image", "lossless (SOF3) JPEG")
    bad_dqt = bytearray(baseline_jpeg)
    dqt = bad_dqt.index(b"\xff\xdb")
    bad_dqt[dqt + 4] = 0x07  # quantization table number 7 (0..3 allowed)
    fx.error_case("bad/bad_dqt_index.jpg", bytes(bad_dqt), "corrupt_image", "DQT with table number 7")

    bomb = bytearray(baseline_jpeg)
    bomb[sof + 5:sof + 9] = struct.pack(">HH", 40000, 40000)
    fx.error_case("bad/bomb_40000x40000.jpg", bytes(bomb), "image_too_large", "tiny JPEG claiming 40000x40000")
    wide = bytearray(baseline_jpeg)
    wide[sof + 5:sof + 9] = struct.pack(">HH", 8, 65000)
    fx.error_case("bad/bomb_65000_wide.jpg", bytes(wide), "image_too_large", "JPEG 65000 wide, 8 high: side limit")
    fx.error_case("bad/many_scans.jpg", progressive, "image_too_complex", "progressive JPEG over a 3-scan limit",
                  max_scans=3)

    png = write_png(np.asarray(base), 2, 8)
    fx.error_case("bad/truncated.png", png[: len(png) * 6 // 10], "truncated_image", "PNG cut at 60%")
    fx.error_case("bad/signature_only.png", png[:8], "truncated_image", "PNG signature only")
    idat = png.index(b"IDAT")
    flipped = bytearray(png)
    flipped[idat + 40] ^= 0x55
    fx.error_case("bad/idat_crc.png", bytes(flipped), "corrupt_image", "PNG IDAT byte flipped (CRC mismatch)")
    ihdr = bytearray(png)
    ihdr[16 + 8] = 7  # bit depth 7 (CRC fixed up, so libpng judges the value)
    ihdr[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr[12:29])) & 0xFFFFFFFF)
    fx.error_case("bad/bad_bit_depth.png", bytes(ihdr), "corrupt_image", "PNG IHDR bit depth 7")
    tiny = write_png(np.zeros((1, 1, 3), np.uint8), 2, 8)
    bomb_png = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 40000, 40000, 8, 2, 0, 0, 0)) \
        + tiny[33:]
    fx.error_case("bad/bomb_40000x40000.png", bomb_png, "image_too_large", "tiny PNG claiming 40000x40000")


def make_preprocess(fx, photo):
    """torchvision references for Resize(resize) + CenterCrop(size) + ToTensor + Normalize."""
    import torch
    from torchvision import transforms

    mean, std = CIFAR10_MEAN, CIFAR10_STD
    buf = io.BytesIO()
    photo.save(buf, "JPEG", quality=85)
    big = fx.write("preprocess/photo_640x480.jpg", buf.getvalue())
    portrait = io.BytesIO()
    photo.crop((0, 0, 333, 480)).save(portrait, "JPEG", quality=85, subsampling=0)
    tall = fx.write("preprocess/photo_333x480.jpg", portrait.getvalue())
    smallpng = io.BytesIO()
    photo.resize((45, 31), Image.BILINEAR).save(smallpng, "PNG")
    small = fx.write("preprocess/small_45x31.png", smallpng.getvalue())
    thin = io.BytesIO()
    photo.resize((2000, 3), Image.BILINEAR).save(thin, "PNG")
    strip = fx.write("preprocess/strip_2000x3.png", thin.getvalue())
    # EXIF-oriented photos: after a flip the partial last DCT block of a scaled decode lies at the start.
    oriented = []
    for orientation in (2, 3, 6, 7):
        exif = Image.Exif()
        exif[0x0112] = orientation
        buf = io.BytesIO()
        photo.crop((150, 100, 353, 271)).save(buf, "JPEG", quality=85, exif=exif.tobytes())
        oriented.append(fx.write(f"preprocess/photo_203x171_orientation_{orientation}.jpg", buf.getvalue()))
    # (file, resize, size): downscales by 1.3x to 13x (DCT scale 1/1 to 1/8), upscaling, odd crop
    # offsets (Python's round-half-even), and a crop larger than the image (zero padding).
    cases = [(big, 400, 48), (big, 240, 48), (big, 200, 41), (big, 120, 48), (big, 100, 40), (big, 60, 56),
             (big, 36, 32), (big, 32, 32), (tall, 150, 48), (tall, 37, 30), (small, 32, 32), (small, 64, 56),
             (small, 20, 24), (strip, 36, 32),  # the strip resizes to 24000x36: only the crop is computed
             (oriented[0], 21, 16), (oriented[1], 20, 18), (oriented[2], 60, 40), (oriented[3], 45, 32)]
    for path, resize, size in cases:
        pipeline = transforms.Compose([transforms.Resize(resize), transforms.CenterCrop(size), transforms.ToTensor(),
                                       transforms.Normalize(mean, std)])
        with open(os.path.join(fx.out, path), "rb") as f:
            tensor = pipeline(ImageOps.exif_transpose(Image.open(f)).convert("RGB")).numpy().astype(np.float32)
        name = os.path.splitext(os.path.basename(path))[0]
        ref = fx.save_npy(f"reference/preprocess_{name}_r{resize}_s{size}.npy", tensor)
        fx.manifest["preprocess"].append({"file": path, "resize": resize, "size": size, "mean": mean, "std": std,
                                          "reference": ref})


# ------------------------------------------------------------------------------------------- fuzz seed corpora

def fuzz_variants(name, data, rng):
    """The file itself, two truncations and two single-byte flips (seeded, so the same every run)."""
    yield name, data
    stem, ext = os.path.splitext(name)
    for fraction in (3, 7):
        yield f"{stem}_cut{fraction}of10{ext}", data[: len(data) * fraction // 10]
    for i in range(2):
        flipped = bytearray(data)
        at = int(rng.integers(8, len(data))) if len(data) > 8 else 0
        flipped[at] ^= 1 << int(rng.integers(0, 8))
        yield f"{stem}_flip{i}{ext}", bytes(flipped)


def png_with_chunks(samples, colour_type, bit_depth, chunks, interlaced=False, palette=None, split_idat=1):
    """A PNG with extra ancillary chunks before IDAT and its image data split over `split_idat` IDAT chunks."""
    png = write_png(samples, colour_type, bit_depth, interlaced, palette=palette)
    head_end = png.index(b"IDAT") - 4
    idat_len = struct.unpack(">I", png[head_end:head_end + 4])[0]
    idat = png[head_end + 8:head_end + 8 + idat_len]
    step = -(-len(idat) // split_idat)
    body = b"".join(png_chunk(b"IDAT", idat[i:i + step]) for i in range(0, len(idat), step))
    return png[:head_end] + b"".join(png_chunk(k, d) for k, d in chunks) + body + png_chunk(b"IEND", b"")


def text_chunk_bomb(kind):
    """Issue 15, finding 1: a text chunk whose length field says 0x7FFFFFF0, followed by 100 bytes. libpng
    allocates (and zeroes) the whole declared length before it finds the data missing."""
    tiny = write_png(np.zeros((1, 1, 3), np.uint8), 2, 8)
    header = tiny[:33]  # signature + IHDR
    return header + struct.pack(">I", 0x7FFFFFF0) + kind + b"Comment\x00" + bytes(92)


def make_fuzz_png(write):
    rng = np.random.default_rng(15)
    gray = rng.integers(0, 256, (5, 7), dtype=np.uint16)
    rgb = rng.integers(0, 256, (5, 7, 3), dtype=np.uint16)
    alpha = rng.integers(0, 256, (5, 7), dtype=np.uint16)
    cases = []
    for interlaced in (False, True):
        tag = "_i" if interlaced else ""
        for depth in (1, 2, 4, 8, 16):
            cases.append((f"gray{depth}{tag}.png", write_png(((gray * ((1 << depth) - 1)) // 255)[..., None], 0, depth, interlaced)))
        for depth in (1, 2, 4, 8):
            n = 1 << depth
            palette = rng.integers(0, 256, (n, 3))
            cases.append((f"palette{depth}{tag}.png", write_png((gray * n // 256)[..., None], 3, depth, interlaced,
                                                               palette=palette, trns=bytes([0, 128][: n]))))
        for depth in (8, 16):
            scale = 257 if depth == 16 else 1
            cases.append((f"rgb{depth}{tag}.png", write_png(rgb * scale, 2, depth, interlaced,
                                                           trns=struct.pack(">HHH", 1, 2, 3))))
            cases.append((f"gray_alpha{depth}{tag}.png", write_png(np.stack([gray, alpha], -1) * scale, 4, depth, interlaced)))
            cases.append((f"rgba{depth}{tag}.png", write_png(np.concatenate([rgb, alpha[..., None]], -1) * scale, 6, depth, interlaced)))
    for h, w in ((1, 1), (1, 9), (9, 1), (3, 33)):
        cases.append((f"rgb8_{w}x{h}.png", write_png(rng.integers(0, 256, (h, w, 3)), 2, 8)))
    icc = zlib.compress(b"\x00" * 128)
    ancillary = [(b"gAMA", struct.pack(">I", 45455)), (b"sBIT", b"\x08\x08\x08"), (b"pHYs", struct.pack(">IIB", 2835, 2835, 1)),
                 (b"tEXt", b"Comment\x00seed"), (b"zTXt", b"Comment\x00\x00" + zlib.compress(b"seed text " * 8)),
                 (b"iTXt", b"Comment\x00\x01\x00en\x00Comment\x00" + zlib.compress(b"seed")), (b"iCCP", b"icc\x00\x00" + icc),
                 (b"bKGD", struct.pack(">HHH", 1, 2, 3)), (b"tIME", struct.pack(">HBBBBB", 2026, 12, 4, 3, 0, 0)),
                 (b"eXIf", b"MM\x00\x2a\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06\x00\x00\x00\x00\x00\x00"),
                 (b"prIv", b"unknown private chunk")]
    cases.append(("rgb8_ancillary_split_idat.png", png_with_chunks(rgb, 2, 8, ancillary, split_idat=3)))
    without_iend = png_with_chunks(rgb, 2, 8, [])[:-12]
    cases.append(("rgb8_empty_idat.png", without_iend + png_chunk(b"IDAT", b"") + png_chunk(b"IEND", b"")))
    # Image data that inflates to more than the rows need (finding 2's shape, small).
    extra = write_png(rgb, 2, 8)
    start = extra.index(b"IDAT") - 4
    raw = b"".join(b"\x00" + bytes(rgb[y].astype(np.uint8).reshape(-1)) for y in range(5)) + bytes(4096)
    cases.append(("rgb8_idat_too_long.png", extra[:start] + png_chunk(b"IDAT", zlib.compress(raw, 9)) + png_chunk(b"IEND", b"")))
    count = 0
    for name, data in cases:
        for variant, payload in fuzz_variants(name, data, rng):
            write("corpus-png/" + variant, payload)
            count += 1
    for kind in (b"tEXt", b"zTXt", b"iTXt"):
        write(f"regressions/png/{kind.decode()}_length_0x7ffffff0.png", text_chunk_bomb(kind))
    return count


def make_fuzz_jpeg(write, work):
    rng = np.random.default_rng(16)
    photo = scene(64, 48)
    cases = []
    def pil(image, **kw):
        buf = io.BytesIO()
        image.save(buf, "JPEG", **kw)
        return buf.getvalue()
    for subsampling, name in ((0, "444"), (1, "422"), (2, "420")):
        cases.append((f"baseline_{name}.jpg", pil(photo, quality=80, subsampling=subsampling)))
    cases.append(("progressive.jpg", pil(photo, quality=80, progressive=True)))
    cases.append(("optimized.jpg", pil(photo, quality=70, optimize=True)))
    cases.append(("gray.jpg", pil(photo.convert("L"), quality=80)))
    cases.append(("gray_progressive.jpg", pil(photo.convert("L"), quality=80, progressive=True)))
    cases.append(("pil_cmyk.jpg", pil(photo.convert("CMYK"), quality=80)))
    exif = Image.Exif()
    exif[0x0112] = 6
    cases.append(("exif_orientation_6.jpg", pil(photo.resize((16, 12)), quality=80, exif=exif.tobytes())))
    for w, h in ((1, 1), (8, 8), (17, 9), (9, 17), (128, 8)):
        cases.append((f"baseline_{w}x{h}.jpg", pil(scene(w, h), quality=75)))
    # Four-component files PIL cannot write: the CMYK writer of the test fixtures, when a C compiler is here.
    exe = os.path.join(work, "cmyk_writer")
    src = os.path.join(work, "cmyk_writer.c")
    with open(src, "w") as f:
        f.write(CMYK_WRITER_C)
    if subprocess.run(["cc", "-O1", "-o", exe, src, "-ljpeg"], capture_output=True).returncode == 0:
        small = np.asarray(photo.resize((24, 16)))
        cmyk = np.concatenate([255 - small, np.zeros(small.shape[:2] + (1,), np.uint8)], -1).astype(np.uint8)
        for kind, adobe in (("cmyk", 1), ("ycck", 1), ("cmyk", 0)):
            path = os.path.join(work, "out.jpg")
            subprocess.run([exe, "24", "16", kind, str(adobe), path], input=cmyk.tobytes(), check=True)
            cases.append((f"{kind}{'_adobe' if adobe else ''}.jpg", open(path, "rb").read()))
    baseline = cases[0][1]
    sof = baseline.index(b"\xff\xc0")
    big = bytearray(baseline)
    big[sof + 5:sof + 9] = struct.pack(">HH", 1200, 1600)  # finding 4: a frame much larger than its scan data
    cases.append(("frame_1600x1200_scan_64x48.jpg", bytes(big)))
    count = 0
    for name, data in cases:
        for variant, payload in fuzz_variants(name, data, rng):
            write("corpus-jpeg/" + variant, payload)
            count += 1
    return count


def make_fuzz_oip(write):
    """Open Inference Protocol request bodies. Layout the OIP fuzzer reads: the first line is the
    Inference-Header-Content-Length value (empty: no header), the rest is the body."""
    def request(header, body):
        return (b"" if header is None else str(header).encode()) + b"\n" + body
    def js(obj):
        return json.dumps(obj, separators=(",", ":")).encode()
    fp32 = {"name": "input", "datatype": "FP32", "shape": [1, 3, 2, 2]}
    cases = {
        "json_fp32_flat": request(None, js({"inputs": [dict(fp32, data=[0.5] * 12)]})),
        "json_fp32_nested": request(None, js({"id": "a", "inputs": [dict(fp32, data=[[[[1, 2], [3, 4]]] * 3])],
                                              "outputs": [{"name": "logits"}, {"name": "probabilities",
                                                                              "parameters": {"binary_data": True}}],
                                              "parameters": {"binary_data_output": False, "timeout_ms": 100}})),
        "json_bytes": request(None, js({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [2, 1],
                                                    "data": ["abc", "\u00ff\u0000"]}]})),
        "json_scalar_shape": request(None, js({"inputs": [{"name": "x", "datatype": "FP32", "shape": [], "data": 1}]})),
        "json_no_data": request(None, js({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1]}]})),
        "json_bad_types": request(None, js({"inputs": [{"name": 1, "datatype": "INT8", "shape": [-1, 1.5, True]}],
                                            "outputs": {"name": 3}, "parameters": {"timeout_ms": "9"}})),
        "json_huge_shape": request(None, js({"inputs": [dict(fp32, shape=[2**31, 2**31, 2**31], data=[])]})),
        "json_not_object": request(None, b"[1,2,3]"),
        "json_invalid": request(None, b'{"inputs": [{"name": "input", '),
        "empty": request(None, b""),
    }
    floats = struct.pack("<12f", *[i / 12 for i in range(12)])
    header = js({"inputs": [dict(fp32, parameters={"binary_data_size": len(floats)})],
                 "outputs": [{"name": "logits", "parameters": {"binary_data": True}}]})
    cases["binary_fp32"] = request(len(header), header + floats)
    cases["binary_fp32_short"] = request(len(header), header + floats[:-5])
    cases["binary_fp32_extra"] = request(len(header), header + floats + b"\x00" * 7)
    elements = [b"\xff\xd8\xff\xe0jpeg", b"\x89PNG\r\n\x1a\n"]
    packed = b"".join(struct.pack("<I", len(e)) + e for e in elements)
    header = js({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [2],
                             "parameters": {"binary_data_size": len(packed)}}]})
    cases["binary_bytes"] = request(len(header), header + packed)
    cases["binary_bytes_bad_length"] = request(len(header), header + struct.pack("<I", 0xFFFFFFF0) + packed[4:])
    cases["binary_header_too_long"] = request(len(header) + 1000, header + packed)
    cases["binary_header_negative"] = request(-3, header + packed)
    cases["binary_header_text"] = request(" 12x", header)
    for name, data in cases.items():
        write(f"corpus-oip/{name}", data)
    return len(cases)


def make_fuzz_corpus(root):
    for sub in ("corpus-png", "corpus-jpeg", "corpus-oip"):
        shutil.rmtree(os.path.join(root, sub), ignore_errors=True)
    def write(relpath, data):
        path = os.path.join(root, relpath)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    work = tempfile.mkdtemp(prefix="cbam-fuzz-corpus-")
    counts = {"png": make_fuzz_png(write), "jpeg": make_fuzz_jpeg(write, work), "oip": make_fuzz_oip(write)}
    shutil.rmtree(work, ignore_errors=True)
    for target, count in counts.items():
        d = os.path.join(root, f"corpus-{target}")
        size = sum(os.path.getsize(os.path.join(d, n)) for n in os.listdir(d))
        print(f"corpus-{target}: {count} files, {size / 1024:.0f} KiB")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("--out", default=os.path.join(here, "..", "Tests", "CBAMImageTests", "Fixtures"))
    parser.add_argument("--fuzz-corpus", metavar="DIR",
                        help="write the fuzzers' seed corpora and regression files under DIR (Fuzz) instead")
    args = parser.parse_args()
    if args.fuzz_corpus:
        make_fuzz_corpus(os.path.abspath(args.fuzz_corpus))
        return
    out = os.path.abspath(args.out)
    for sub in ("jpeg", "png", "exif", "bad", "preprocess", "reference"):
        shutil.rmtree(os.path.join(out, sub), ignore_errors=True)
    fx = Fixtures(out)
    photo = scene(640, 480)
    base = photo.crop((101, 77, 101 + 67, 77 + 45))  # odd sides: partial MCUs on both axes
    baseline = make_jpegs(fx, base)
    make_exif(fx, base)
    make_pngs(fx, base.crop((0, 0, 45, 31)))
    make_bad(fx, base, baseline)
    make_preprocess(fx, photo)
    fx.manifest["generator"] = "tools/make_image_fixtures.py"
    import PIL, torchvision
    fx.manifest["versions"] = {"Pillow": PIL.__version__, "torchvision": torchvision.__version__,
                               "numpy": np.__version__}
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(fx.manifest, f, indent=1)
        f.write("\n")
    shutil.rmtree(fx.work, ignore_errors=True)
    total = sum(os.path.getsize(os.path.join(d, n)) for d, _, ns in os.walk(out) for n in ns)
    print(f"{len(fx.manifest['decode'])} decode, {len(fx.manifest['errors'])} error, "
          f"{len(fx.manifest['preprocess'])} preprocess cases; {total / 1024:.0f} KiB in {out}")


if __name__ == "__main__":
    main()
