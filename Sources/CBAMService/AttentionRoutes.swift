import CBAMEngine
import CBAMImage
import HTTPServer

extension InferenceService {
    func addAttentionRoutes(to router: Router) {
        router.get("/v1/attention/{id}", handler: route { [self] request throws(HTTPError) in try attention(request) })
    }

    /// `GET /v1/attention/{id}`: the stored maps of a prediction as JSON (filtered by `layer`, `kind`, `image`), or
    /// with `format=png` a heat-map of one layer's spatial map over the input crop (`overlay=true` blends it in).
    func attention(_ request: HTTPRequest) throws(HTTPError) -> HTTPResponse {
        let id = request.pathParameters["id"] ?? ""
        guard let stored = attentionStore.value(for: id) else {
            throw HTTPError(status: 404, code: "attention_not_found",
                               message: "no attention maps under id \"\(id)\"; they are kept for \(Int(configuration.attentionTTL.seconds)) s and the \(configuration.attentionStoreEntries) most recent responses")
        }
        let layerNames = stored.images.first?.maps.map(\.layer) ?? []
        let layer = request.query["layer"]
        if let layer, !layerNames.contains(layer) {
            throw HTTPError(status: 404, code: "unknown_layer",
                               message: "no CBAM layer \"\(layer)\"; this model's are \(layerNames.joined(separator: ", "))")
        }
        var images = Array(stored.images.indices)
        if let text = request.query["image"] {
            guard let index = Int(text), index >= 0 else {
                throw .badRequest("invalid_parameter", "image must be a non-negative integer; got \"\(text)\"")
            }
            // Like an unknown layer: a well-formed index this response does not have.
            guard stored.images.indices.contains(index) else {
                throw HTTPError(status: 404, code: "unknown_image",
                                   message: "response \(id) has \(stored.images.count) image(s), indices 0..<\(stored.images.count); no image \(index)")
            }
            images = [index]
        }
        // Every parameter is checked whatever the format, so that a bad value is never silently ignored.
        let kind = try AttentionKind.parse(request.query["kind"] ?? "all", parameter: "kind")
        guard kind != .none else { throw .badRequest("invalid_parameter", "kind must be channel, spatial or all") }
        let overlay = try boolParameter(request, "overlay")
        let colormapName = request.query["colormap"] ?? "jet"
        guard let colormap = Colormap(rawValue: colormapName.lowercased()) else {
            throw .badRequest("invalid_parameter",
                              "colormap must be one of \(Colormap.allCases.map(\.rawValue).joined(separator: ", ")); got \"\(colormapName)\"")
        }
        let format = request.query["format"]?.lowercased() ?? "json"
        switch format {
        case "json":
            let list = images.map { i in
                StoredAttentionResponse.Image(
                    index: i, filename: stored.images[i].filename,
                    attention: stored.images[i].maps.filter { layer == nil || $0.layer == layer }.map { AttentionLayer($0, kind: kind) })
            }
            return .json(StoredAttentionResponse(id: id, model: stored.model, images: list))
        case "png":
            let image = stored.images[images[0]]
            // Without a layer, the deepest one: the map closest to the decision.
            guard let map = image.maps.first(where: { $0.layer == (layer ?? layerNames.last) }) else {
                throw HTTPError(status: 404, code: "unknown_layer", message: "this model has no attention layers")
            }
            guard map.hasSpatialMap else {
                throw HTTPError(status: 404, code: "no_spatial_map",
                                message: "layer \(map.layer) has channel attention only (no spatial map to draw); ask for format=json")
            }
            let rgb = HeatMap.render(spatial: map.spatial, height: map.spatialHeight, width: map.spatialWidth,
                                     cropSize: stored.cropSize, colormap: colormap, overlay: overlay ? image.crop : nil)
            let png: [UInt8]
            do { png = try PNGEncoder.encode(rgb: rgb, width: stored.cropSize, height: stored.cropSize) } catch {
                throw HTTPError(status: 500, code: "png_encoding_failed", message: error.message)
            }
            return HTTPResponse(status: .ok, headers: ["Content-Type": "image/png"], body: png)
        default:
            throw .badRequest("invalid_parameter", "format must be json or png; got \"\(format)\"")
        }
    }

    func boolParameter(_ request: HTTPRequest, _ name: String) throws(HTTPError) -> Bool {
        guard let text = request.query[name] else { return false }
        switch text.lowercased() {
        case "true", "1", "yes", "": return true
        case "false", "0", "no": return false
        default: throw .badRequest("invalid_parameter", "\(name) must be true or false; got \"\(text)\"")
        }
    }
}
