import CBAMEngine
import CBAMImage
import Foundation
import HTTPServer

extension InferenceService {
    func addPredictionRoutes(to router: Router) {
        router.post("/v1/predict", handler: route { [self] request throws(ServiceError) in try await predict(request) })
        router.post("/v1/models/{name}/predict", handler: route { [self] request throws(ServiceError) in
            try checkModel(request.pathParameters["name"])
            return try await predict(request)
        })
    }

    /// `POST /v1/predict`: a raw image, or multipart/form-data with one or more files; top-k classes and,
    /// when asked, attention maps. The maps of every response are kept under its id for `/v1/attention/{id}`.
    func predict(_ request: HTTPRequest) async throws(ServiceError) -> HTTPResponse {
        let clock = ContinuousClock()
        let start = clock.now
        let topK = min(try intParameter(request, "top_k", default: configuration.defaultTopK, range: 1...1_000_000), numClasses)
        let attention = try AttentionKind.parse(request.query["attention"], parameter: "attention")
        let timeoutMS = try request.query["timeout_ms"].map { (_) throws(ServiceError) in
            try intParameter(request, "timeout_ms", default: 0, range: 1...Int(Int32.max))
        }
        let timeout = timeout(milliseconds: timeoutMS), deadline = start + timeout
        let (files, multipart) = try uploadedImages(request)
        let reservation = try admit(files.count)  // before decoding: a full queue costs the upload nothing
        let prepared = try await prepare(files, deadline: deadline)
        let result = try await infer(PreparedImages(tensor: prepared.tensor, count: files.count, wantsAttention: true),
                                     reservation: reservation, deadline: deadline, timeout: timeout)

        let id = UUID().uuidString.lowercased()
        let output = result.output
        if !output.attention.isEmpty {
            let size = inputSize, per = 3 * size * size
            let images = files.indices.map { i in
                StoredAttention.Image(
                    filename: files[i].name, maps: output.attention[i],
                    crop: HeatMap.denormalize(Array(prepared.tensor[i * per..<(i + 1) * per]), height: size, width: size,
                                              mean: preprocessor.mean, std: preprocessor.std))
            }
            attentionStore.insert(StoredAttention(model: modelName, cropSize: size, images: images), for: id)
        }

        func resultJSON(_ i: Int) -> String {
            let probabilities = softmax(output.logits[i * numClasses..<(i + 1) * numClasses])
            let predictions = CBAMEngine.topK(probabilities, k: topK).map {
                "{\"index\":\($0.index),\"label\":\(JSONText.string(label($0.index))),\"probability\":\(JSONText.number($0.score))}"
            }.joined(separator: ",")
            var json = "\"predictions\":[\(predictions)]"
            if attention != .none, i < output.attention.count {
                json += ",\"attention\":" + AttentionJSON.layers(output.attention[i], kind: attention)
            }
            return json
        }
        var body = "{\"id\":\(JSONText.string(id)),\"model\":\(JSONText.string(modelName)),"
        if multipart {
            body += "\"results\":[" + files.indices.map { i in
                "{\"index\":\(i),\"filename\":" + (files[i].name.map(JSONText.string) ?? "null") + "," + resultJSON(i) + "}"
            }.joined(separator: ",") + "],"
        } else {
            body += resultJSON(0) + ","
        }
        body += "\"timing\":{\"decode_ms\":\(ms(prepared.decode)),\"preprocess_ms\":\(ms(prepared.preprocess)),"
            + "\"queue_ms\":\(ms(result.queueWait)),\"inference_ms\":\(ms(result.inferenceTime)),"
            + "\"batch_size\":\(result.batchSize),\"batch_requests\":\(result.batchJobs),"
            + "\"total_ms\":\(ms(start.duration(to: clock.now)))}}"
        var response = HTTPResponse.json(body)
        response.headers.set("Location", "/v1/attention/\(id)")
        return response
    }

    /// The images of an upload: the parts of a multipart form that carry a file or any bytes, or the raw body.
    func uploadedImages(_ request: HTTPRequest) throws(ServiceError) -> (files: [(name: String?, bytes: [UInt8])], multipart: Bool) {
        let contentType = request.contentType ?? ""
        let mediaType = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        if mediaType == "multipart/form-data" {
            let parts: [MultipartPart]
            do { parts = try Multipart.parse(body: request.body, contentType: contentType) } catch {
                throw ServiceError(status: error.status.code, code: error.code, message: error.message)
            }
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
            throw ServiceError(status: 415, code: "unsupported_media_type",
                               message: "send an image as image/jpeg, image/png or application/octet-stream, or files as multipart/form-data; got \(contentType)")
        }
        guard !request.body.isEmpty else {
            throw .badRequest("empty_body", "the request body is empty; send a JPEG or PNG image")
        }
        return ([(name: nil, bytes: request.body)], false)
    }

    func intParameter(_ request: HTTPRequest, _ name: String, default value: Int, range: ClosedRange<Int>) throws(ServiceError) -> Int {
        guard let text = request.query[name] else { return value }
        guard let number = Int(text), range.contains(number) else {
            throw .badRequest("invalid_parameter", "\(name) must be an integer in \(range.lowerBound)...\(range.upperBound); got \"\(text)\"")
        }
        return number
    }
}

/// Milliseconds with three decimals, for the timing object.
func ms(_ duration: Duration) -> String {
    String(format: "%.3f", duration.seconds * 1000)
}
