/// timm's `avg_down` shortcut pool: 2x2 windows, stride 2, ceil mode, the mean over the window's pixels inside the map
/// (PyTorch's `AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False)`).
func averagePool2x2(_ input: FeatureMap, into output: UnsafeMutablePointer<Float>) -> FeatureMap {
    let (h, w) = (input.height, input.width)
    let (oh, ow) = averagePool2x2Size(height: h, width: w)
    for plane in 0..<(input.channels * input.batch) {
        let src = input.data + plane * h * w
        let dst = output + plane * oh * ow
        for oy in 0..<oh {
            let y0 = 2 * oy, y1 = min(h, y0 + 2)
            for ox in 0..<ow {
                let x0 = 2 * ox, x1 = min(w, x0 + 2)
                var total: Float = 0
                for y in y0..<y1 { for x in x0..<x1 { total += src[y * w + x] } }
                dst[oy * ow + ox] = total / Float((y1 - y0) * (x1 - x0))
            }
        }
    }
    return FeatureMap(data: output, channels: input.channels, batch: input.batch, height: oh, width: ow)
}

func averagePool2x2Size(height: Int, width: Int) -> (height: Int, width: Int) { ((height + 1) / 2, (width + 1) / 2) }
