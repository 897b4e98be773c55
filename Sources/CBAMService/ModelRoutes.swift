import CBAMEngine
import HTTPServer

extension InferenceService {
    func addHealthRoutes(to router: Router) {
        router.get("/healthz", handler: route(public: true) { _ in .json(HealthStatus(status: "ok", model: nil)) })
        router.get("/readyz", handler: route(public: true) { [self] _ throws(HTTPError) in
            if isReady { return .json(HealthStatus(status: "ready", model: modelName)) }
            throw HTTPError(status: 503, code: "not_ready",
                               message: queue.isShuttingDown ? "the server is shutting down"
                                   : "the inference queue is saturated (\(queue.depth) images waiting)",
                               headers: [("Retry-After", String(configuration.retryAfterSeconds))])
        })
        router.get("/metrics", handler: route { [metrics] _ in
            HTTPResponse(status: .ok, headers: ["Content-Type": "text/plain; version=0.0.4; charset=utf-8"],
                         body: metrics.exposition())
        })
        let document = OpenAPIDocument.json(modelName: modelName, apiKeyRequired: apiKey != nil)
        router.get("/openapi.json", handler: route { _ in HTTPResponse.json(bytes: document) })
    }

    func addModelRoutes(to router: Router) {
        router.get("/v1/models", handler: route { [self] _ in .json(ModelList(models: [modelDescription])) })
        router.get("/v1/models/{name}", handler: route { [self] request throws(HTTPError) in
            try checkModel(request.pathParameters["name"])
            return .json(modelDescription)
        })
    }

    /// Name, architecture, input, classes, CBAM layers with their map shapes, and size.
    var modelDescription: ModelDescription {
        let s = summary, input = modelConfig.input
        return ModelDescription(
            name: modelName,
            architecture: .init(block: s.block, layers: s.layers, widths: s.widths, stem: s.stem, shortcut: s.shortcut,
                                attention: modelConfig.attention.map {
                                    .init(type: $0.type, reduction: $0.kind == .eca ? nil : $0.reduction,
                                          kernelSize: $0.kind == .cbam ? $0.kernelSize : nil,
                                          spatialMap: $0.kind?.hasSpatialMap ?? false)
                                },
                                checkpointLayout: s.checkpointLayout),
            input: .init(size: input.size, resize: input.resize, mean: input.mean, std: input.std, shape: [3, input.size, input.size]),
            numClasses: numClasses, labels: labels,
            cbamLayers: s.cbamLayers.map { l in
                .init(layer: l.layer, type: l.type, channels: l.channels, hidden: l.hidden, kernelSize: l.kernelSize, channelShape: [l.channels],
                      spatialShape: l.spatialHeight.flatMap { h in l.spatialWidth.map { [h, $0] } })
            },
            parameters: s.parameters, multiplyAdds: s.multiplyAdds, maxBatchSize: configuration.maxBatchSize)
    }
}
