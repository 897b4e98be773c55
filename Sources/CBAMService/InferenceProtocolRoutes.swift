import CBAMEngine
import HTTPServer

/// The Open Inference Protocol (KServe v2) routes, with Triton's model-config extension so that `perf_analyzer`
/// and `tritonclient` work unchanged. Inference goes through the same batching queue as `/v1/predict`.
extension InferenceService {
    static let tensorInputName = "input"
    static let imageInputName = "image"
    static let outputNames = ["logits", "probabilities"]

    func addInferenceProtocolRoutes(to router: Router) {
        router.get("/v2", handler: route(errors: .inferenceProtocol) { [self] _ in
            .json(ServerMetadata(name: "cbam-serve", version: configuration.serverVersion,
                                 extensions: ["binary_tensor_data", "model_configuration"]))
        })
        router.get("/v2/health/live", handler: route(public: true, errors: .inferenceProtocol) { _ in HTTPResponse(status: .ok) })
        router.get("/v2/health/ready", handler: route(public: true, errors: .inferenceProtocol) { [self] _ throws(HTTPError) in
            guard isReady else { throw HTTPError(status: 503, code: "not_ready", message: "the server is not ready") }
            return HTTPResponse(status: .ok)
        })
        for prefix in ["/v2/models/{name}", "/v2/models/{name}/versions/{version}"] {
            router.get(prefix, handler: route(errors: .inferenceProtocol) { [self] request throws(HTTPError) in
                try checkModel(request)
                return .json(inferenceProtocolMetadata)
            })
            router.get(prefix + "/ready", handler: route(errors: .inferenceProtocol) { [self] request throws(HTTPError) in
                try checkModel(request)
                guard isReady else { throw HTTPError(status: 503, code: "not_ready", message: "the model is not ready") }
                return HTTPResponse(status: .ok)
            })
            router.get(prefix + "/config", handler: route(errors: .inferenceProtocol) { [self] request throws(HTTPError) in
                try checkModel(request)
                return .json(tritonModelConfig)
            })
            router.post(prefix + "/infer", handler: route(errors: .inferenceProtocol) { [self] request throws(HTTPError) in
                try checkModel(request)
                return try await inferenceProtocolInfer(request)
            })
        }
    }

    private func checkModel(_ request: HTTPRequest) throws(HTTPError) {
        try checkModel(request.pathParameters["name"])
        if let version = request.pathParameters["version"], version != "1" {
            throw HTTPError(status: 404, code: "model_version_not_found",
                               message: "model \(modelName) has only version 1, not \"\(version)\"")
        }
    }

    /// Model metadata: the batch dimension is -1 (dynamic, up to the configured maximum batch size).
    var inferenceProtocolMetadata: ModelMetadata {
        let s = inputSize, c = numClasses
        return ModelMetadata(
            name: modelName, versions: ["1"], platform: "cbam-swift",
            inputs: [.init(name: Self.tensorInputName, datatype: "FP32", shape: [-1, 3, s, s]),
                     .init(name: Self.imageInputName, datatype: "BYTES", shape: [-1, 1])],
            outputs: Self.outputNames.map { .init(name: $0, datatype: "FP32", shape: [-1, c]) })
    }

    /// Triton's model configuration (what `perf_analyzer` reads): one of the two inputs is sent, so both are optional.
    var tritonModelConfig: TritonModelConfig {
        let s = inputSize, c = numClasses
        return TritonModelConfig(
            name: modelName, platform: "cbam-swift", backend: "cbam-swift", maxBatchSize: configuration.maxBatchSize,
            input: [.init(name: Self.tensorInputName, dataType: "TYPE_FP32", format: "FORMAT_NCHW", dims: [3, s, s], optional: false),
                    .init(name: Self.imageInputName, dataType: "TYPE_STRING", format: nil, dims: [1], optional: true)],
            output: Self.outputNames.map { .init(name: $0, dataType: "TYPE_FP32", dims: [c]) },
            dynamicBatching: .init(maxQueueDelayMicroseconds: Int(configuration.maxBatchDelay.nanoseconds / 1000)))
    }

    func inferenceProtocolInfer(_ request: HTTPRequest) async throws(HTTPError) -> HTTPResponse {
        if let encoding = request.headers["Content-Encoding"], encoding.lowercased() != "identity" {
            throw HTTPError(status: 415, code: "unsupported_content_encoding",
                               message: "compressed request bodies (Content-Encoding: \(encoding)) are not supported; send them uncompressed")
        }
        let decoded = try InferenceProtocolDecoder.decode(
            body: request.body, headerLength: request.headers[InferenceProtocolDecoder.headerLengthField],
            contentType: request.contentType)
        guard decoded.inputs.count == 1, let input = decoded.inputs.first else {
            throw .badRequest("invalid_inputs",
                              "send exactly one input: \(Self.tensorInputName) (FP32 [N,3,\(inputSize),\(inputSize)]) or \(Self.imageInputName) (BYTES [N] of JPEG/PNG files); got \(decoded.inputs.count)")
        }
        for output in decoded.outputs ?? [] where !Self.outputNames.contains(output.name) {
            throw .badRequest("unknown_output", "no output \"\(output.name)\"; the outputs are logits and probabilities")
        }
        let timeout = timeout(milliseconds: decoded.timeoutMilliseconds), deadline = ContinuousClock.now + timeout
        let count: Int, tensor: [Float], reservation: Reservation
        switch (input.name, input.data) {
        case (Self.tensorInputName, .fp32(let values)):
            let s = inputSize
            guard input.shape.count == 4, input.shape[1] == 3, input.shape[2] == s, input.shape[3] == s else {
                throw .badRequest("shape_mismatch", "input \(input.name) must have shape [N,3,\(s),\(s)]; got \(input.shape)")
            }
            count = input.shape[0]
            reservation = try admit(count)
            tensor = values
        case (Self.imageInputName, .bytes(let images)):
            guard input.shape.count == 1 || (input.shape.count == 2 && input.shape[1] == 1) else {
                throw .badRequest("shape_mismatch", "input \(input.name) must have shape [N] or [N,1]; got \(input.shape)")
            }
            count = images.count
            reservation = try admit(count)  // before decoding: a full queue costs the upload nothing
            tensor = try await prepare(images.enumerated().map { (name: "image \($0.offset)", bytes: $0.element) },
                                       deadline: deadline).tensor
        case (Self.tensorInputName, _), (Self.imageInputName, _):
            throw .badRequest("unsupported_datatype",
                              "input \(input.name) must be \(input.name == Self.tensorInputName ? "FP32" : "BYTES"), got \(input.data.datatype)")
        default:
            throw .badRequest("unknown_input",
                              "no input \"\(input.name)\"; send \(Self.tensorInputName) (FP32) or \(Self.imageInputName) (BYTES)")
        }
        let result = try await infer(PreparedImages(tensor: tensor, count: count, wantsAttention: false),
                                     reservation: reservation, deadline: deadline, timeout: timeout)
        let logits = result.output.logits, c = numClasses
        var outputs: [InferenceOutput] = []
        let wanted = decoded.outputs?.map(\.name) ?? Self.outputNames
        for name in Self.outputNames where wanted.contains(name) {
            let values = name == "logits" ? logits
                : (0..<count).flatMap { softmax(logits[$0 * c..<($0 + 1) * c]) }
            outputs.append(InferenceOutput(name: name, shape: [count, c], values: values))
        }
        let encoded = InferenceProtocolEncoder.encode(modelName: modelName, modelVersion: "1", id: decoded.id,
                                                      outputs: outputs, binary: decoded.wantsBinary)
        var response = HTTPResponse(status: .ok, headers: ["Content-Type": encoded.contentType], body: encoded.body)
        if let length = encoded.headerLength {
            response.headers.set(InferenceProtocolDecoder.headerLengthField, String(length))
        }
        return response
    }
}
