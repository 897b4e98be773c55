import CBAMEngine
import CBAMImage
import Foundation
import HTTPServer

extension InferenceService {
    func addPredictionRoutes(to router: Router) {
        router.post("/v1/predict", handler: route { [self] request throws(HTTPError) in try await predict(request) })
        router.post("/v1/models/{name}/predict", handler: route { [self] request throws(HTTPError) in
            try checkModel(request.pathParameters["name"])
            return try await predict(request)
        })
    }

    /// `POST /v1/predict`: a raw image, or multipart/form-data with one or more files; top-k classes and,
    /// when asked, attention maps. The maps of every response are kept under its id for `/v1/attention/{id}`
    /// (`Location` names it) unless the store is off (`--attention-store-size 0`); then a request that does not ask
    /// for maps does not have them computed.
    func predict(_ request: HTTPRequest) async throws(HTTPError) -> HTTPResponse {
        let clock = ContinuousClock()
        let start = clock.now
        let topK = min(try intParameter(request, "top_k", default: configuration.defaultTopK, range: 1...1_000_000), numClasses)
        let attention = try AttentionKind.parse(request.query["attention"], parameter: "attention")
        let timeoutMS = try request.query["timeout_ms"].map { (_) throws(HTTPError) in
            try intParameter(request, "timeout_ms", default: 0, range: 1...Int(Int32.max))
        }
        let timeout = timeout(milliseconds: timeoutMS), deadline = start + timeout
        let (files, multipart) = try uploadedImages(request)
        let reservation = try admit(files.count)  // before decoding: a full queue costs the upload nothing
        let prepared = try await prepare(files, deadline: deadline)
        let stores = configuration.attentionStoreEntries > 0
        let result = try await infer(PreparedImages(tensor: prepared.tensor, count: files.count,
                                                    wantsAttention: stores || attention != .none),
                                     reservation: reservation, deadline: deadline, timeout: timeout)

        let id = UUID().uuidString.lowercased()
        let output = result.output
        if stores && !output.attention.isEmpty {
            let size = inputSize, per = 3 * size * size
            let images = files.indices.map { i in
                StoredAttention.Image(
                    filename: files[i].name, maps: output.attention[i],
                    crop: HeatMap.denormalize(Array(prepared.tensor[i * per..<(i + 1) * per]), height: size, width: size,
                                              mean: preprocessor.mean, std: preprocessor.std))
            }
            attentionStore.insert(StoredAttention(model: modelName, cropSize: size, images: images), for: id)
        }

        func imageResult(_ i: Int) -> PredictionResponse.ImageResult {
            let probabilities = softmax(output.logits[i * numClasses..<(i + 1) * numClasses])
            let predictions = CBAMEngine.topK(probabilities, k: topK).map {
                Prediction(index: $0.index, label: label($0.index), probability: $0.score)
            }
            let maps = attention != .none && i < output.attention.count
                ? output.attention[i].map { AttentionLayer($0, kind: attention) } : nil
            return .init(predictions: predictions, attention: maps)
        }
        let body: PredictionResponse.Body = multipart
            ? .files(files.indices.map { .init(index: $0, filename: files[$0].name, result: imageResult($0)) })
            : .single(imageResult(0))
        let timing = PredictionResponse.Timing(
            decodeMs: ms(prepared.decode), preprocessMs: ms(prepared.preprocess), queueMs: ms(result.queueWait),
            inferenceMs: ms(result.inferenceTime), batchSize: result.batchSize, batchRequests: result.batchJobs,
            totalMs: ms(start.duration(to: clock.now)))
        var response = HTTPResponse.json(PredictionResponse(id: id, model: modelName, body: body, timing: timing))
        if stores { response.headers.set("Location", "/v1/attention/\(id)") }
        return response
    }

    /// The images of an upload: the parts of a multipart form that carry a file or any bytes, or the raw body.
    func uploadedImages(_ request: HTTPRequest) throws(HTTPError) -> (files: [(name: String?, bytes: [UInt8])], multipart: Bool) {
        let contentType = request.contentType ?? ""
        let mediaType = request.mediaType
        if mediaType == "multipart/form-data" {
            let parts: [MultipartPart]
            parts = try Multipart.parse(body: request.body, contentType: contentType)
            // File parts are images; plain text fields (no filename, no binary type) are not.
            let files = parts.filter { part in
                let type = part.contentType?.lowercased() ?? ""
                return part.filename != nil || type.hasPrefix("image/") || type.hasPrefix("application/octet-stream")
            }.map { (name: $0.filename ?? $0.name, bytes: $0.body) }
            guard !files.isEmpty else {
                throw .badRequest("no_images", "the multipart form has no file parts; send each image as a file field")
            }
            return (files, true)
        }
        guard ["", "image/jpeg", "image/jpg", "image/png", "application/octet-stream"].contains(mediaType) else {
            throw HTTPError(status: 415, code: "unsupported_media_type",
                               message: "send an image as image/jpeg, image/png or application/octet-stream, or files as multipart/form-data; got \(contentType)")
        }
        guard !request.body.isEmpty else {
            throw .badRequest("empty_body", "the request body is empty; send a JPEG or PNG image")
        }
        return ([(name: nil, bytes: request.body)], false)
    }

    func intParameter(_ request: HTTPRequest, _ name: String, default value: Int, range: ClosedRange<Int>) throws(HTTPError) -> Int {
        guard let text = request.query[name] else { return value }
        guard let number = Int(text), range.contains(number) else {
            throw .badRequest("invalid_parameter", "\(name) must be an integer in \(range.lowerBound)...\(range.upperBound); got \"\(text)\"")
        }
        return number
    }
}

/// Milliseconds to three decimals, for the timing object.
func ms(_ duration: Duration) -> Double {
    (duration.seconds * 1_000_000).rounded() / 1000
}
