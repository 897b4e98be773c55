import CBAMEngine
import HTTPServer

extension InferenceService {
    func addHealthRoutes(to router: Router) {
        router.get("/healthz", handler: route(public: true) { _ in .json("{\"status\":\"ok\"}") })
        router.get("/readyz", handler: route(public: true) { [self] _ throws(ServiceError) in
            if isReady { return .json("{\"status\":\"ready\",\"model\":\(JSONText.string(modelName))}") }
            throw ServiceError(status: 503, code: "not_ready",
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
        router.get("/v1/models", handler: route { [self] _ in .json("{\"models\":[\(modelDescriptionJSON)]}") })
        router.get("/v1/models/{name}", handler: route { [self] request throws(ServiceError) in
            try checkModel(request.pathParameters["name"])
            return .json(modelDescriptionJSON)
        })
    }

    /// Name, architecture, input, classes, CBAM layers with their map shapes, and size.
    var modelDescriptionJSON: String {
        let s = summary, input = modelConfig.input
        let layers = s.cbamLayers.map {
            "{\"layer\":\(JSONText.string($0.layer)),\"channels\":\($0.channels),\"hidden\":\($0.hidden),"
                + "\"channel_shape\":[\($0.channels)],\"spatial_shape\":[\($0.spatialHeight),\($0.spatialWidth)]}"
        }.joined(separator: ",")
        return "{\"name\":\(JSONText.string(modelName)),"
            + "\"architecture\":{\"family\":\"cbam-resnet\",\"block\":\(JSONText.string(s.block)),"
            + "\"layers\":[\(s.layers.map(String.init).joined(separator: ","))],"
            + "\"widths\":[\(s.widths.map(String.init).joined(separator: ","))],\"stem\":\(JSONText.string(s.stem)),"
            + "\"attention\":\(modelConfig.attention.map { "{\"type\":\(JSONText.string($0.type)),\"reduction\":\($0.reduction),\"kernel_size\":\($0.kernelSize)}" } ?? "null")},"
            + "\"input\":{\"size\":\(input.size),\"resize\":\(input.resize),\"mean\":\(JSONText.numbers(input.mean)),"
            + "\"std\":\(JSONText.numbers(input.std)),\"shape\":[3,\(input.size),\(input.size)]},"
            + "\"num_classes\":\(numClasses),\"labels\":[\(labels.map(JSONText.string).joined(separator: ","))],"
            + "\"cbam_layers\":[\(layers)],\"parameters\":\(s.parameters),\"multiply_adds\":\(s.multiplyAdds),"
            + "\"max_batch_size\":\(configuration.maxBatchSize)}"
    }
}
