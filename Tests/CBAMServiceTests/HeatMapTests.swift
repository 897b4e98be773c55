import Testing
@testable import CBAMService

@Suite struct HeatMapTests {
    @Test func upsamplingMatchesPyTorchBilinearWithoutAlignedCorners() {
        // F.interpolate(torch.tensor([[[[0., 1.], [2., 3.]]]]), size=(4, 4), mode="bilinear", align_corners=False)
        let expected: [Float] = [0.00, 0.25, 0.75, 1.00,
                                 0.50, 0.75, 1.25, 1.50,
                                 1.50, 1.75, 2.25, 2.50,
                                 2.00, 2.25, 2.75, 3.00]
        let out = HeatMap.upsample([0, 1, 2, 3], height: 2, width: 2, toHeight: 4, width: 4)
        #expect(out.count == 16)
        for (a, b) in zip(out, expected) { #expect(abs(a - b) < 1e-6) }
    }

    @Test func upsamplingToTheSameSizeIsTheIdentity() {
        let map: [Float] = (0..<12).map { Float($0) * 0.1 }
        #expect(HeatMap.upsample(map, height: 3, width: 4, toHeight: 3, width: 4) == map)
    }

    @Test func colormapsRunFromColdToHot() {
        #expect(Colormap.jet.color(0) == (0, 0, 128))
        #expect(Colormap.jet.color(1) == (128, 0, 0))
        #expect(Colormap.jet.color(0.5) == (128, 255, 128))
        #expect(Colormap.inferno.color(0) == (0, 0, 4))
        #expect(Colormap.inferno.color(1) == (252, 255, 164))
        #expect(Colormap.gray.color(0.5) == (128, 128, 128))
        #expect(Colormap.gray.color(.nan) == (0, 0, 0))
    }

    @Test func colorizeStretchesTheMapToItsRange() {
        let rgb = HeatMap.colorize([0.4, 0.6], colormap: .gray)
        #expect(rgb == [0, 0, 0, 255, 255, 255])
        #expect(HeatMap.colorize([0.5, 0.5], colormap: .gray) == [128, 128, 128, 128, 128, 128])
    }

    @Test func denormalizeUndoesTheModelsNormalisation() {
        let mean: [Float] = [0.5, 0.25, 0], std: [Float] = [0.5, 0.25, 1]
        // one pixel: r = 1 → 1*0.5+0.5 = 1 → 255; g = -1 → 0; b = 0.2 → 51
        let rgb = HeatMap.denormalize([1, -1, 0.2], height: 1, width: 1, mean: mean, std: std)
        #expect(rgb == [255, 0, 51])
    }

    @Test func renderProducesACropSizedImageAndOverlayBlendsIt() {
        let heat = HeatMap.render(spatial: [0, 1, 1, 0], height: 2, width: 2, cropSize: 8, colormap: .gray)
        #expect(heat.count == 8 * 8 * 3)
        #expect(heat[0] < 60)                                // top-left is cold
        #expect(heat[(7) * 3] > 200)                         // top-right is hot
        let crop = [UInt8](repeating: 200, count: 8 * 8 * 3)
        let blended = HeatMap.render(spatial: [0, 1, 1, 0], height: 2, width: 2, cropSize: 8, colormap: .gray,
                                     overlay: crop, alpha: 0.5)
        #expect(blended.count == heat.count)
        for i in 0..<heat.count {
            #expect(abs(Int(blended[i]) - (Int(heat[i]) + 200 + 1) / 2) <= 1)
        }
    }
}
