import CBAMEngine

/// What `/v1/attention/{id}` serves: the maps of every image of one prediction response, and the crops the model
/// saw (RGB8, `cropSize × cropSize`) for heat-map overlays.
public struct StoredAttention: Sendable, ByteCounted {
    public struct Image: Sendable {
        public let filename: String?
        public let maps: [AttentionMap]
        /// HWC RGB8 of the de-normalised input crop.
        public let crop: [UInt8]
    }

    public let model: String
    public let cropSize: Int
    public let images: [Image]

    public var byteCount: Int {
        images.reduce(64) { total, image in
            total + image.crop.count + 64
                + image.maps.reduce(0) { $0 + 4 * ($1.channel.count + $1.spatial.count) + 96 }
        }
    }
}
