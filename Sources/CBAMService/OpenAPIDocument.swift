import Foundation
import HTTPServer

/// The OpenAPI 3.1 description of every route, served at `/openapi.json`. The end-to-end tests check it against
/// the live router: every documented path answers, and every route is documented; a schemathesis run
/// (Tests/python/test_openapi_schemathesis.py) checks every answer against it, with and without an API key.
enum OpenAPIDocument {
    /// The document for a server serving `modelName`. Without an API key it declares no security scheme and no
    /// 401 answers, since no route can give one.
    static func json(modelName: String, apiKeyRequired: Bool) -> [UInt8] {
        let document = Array(text.replacingOccurrences(of: "$PREDICT_RESPONSES", with: predictResponses)
            .replacingOccurrences(of: "$MODEL", with: String(decoding: jsonStringContent(modelName), as: UTF8.self)).utf8)
        return apiKeyRequired ? document : withoutSecurity(document)
    }

    /// `s` escaped as inside a JSON string literal (without the quotes), to be spliced into the template.
    private static func jsonStringContent(_ s: String) -> ArraySlice<UInt8> {
        ((try? JSONBodyEncoder.encode(s)) ?? Array(#""""#.utf8)).dropFirst().dropLast()
    }

    /// Drops the bearer scheme, every `security` requirement and every 401 response.
    private static func withoutSecurity(_ document: [UInt8]) -> [UInt8] {
        // The template is a constant, checked by the tests; failing to parse it is a programming error.
        guard var root = try? JSONSerialization.jsonObject(with: Data(document)) as? [String: Any],
              var paths = root["paths"] as? [String: [String: Any]] else {
            preconditionFailure("OpenAPIDocument.text is not a JSON object with paths")
        }
        root["security"] = nil
        if var components = root["components"] as? [String: Any] {
            components["securitySchemes"] = nil
            if var responses = components["responses"] as? [String: Any] {
                responses["Unauthorized"] = nil
                responses["OIPUnauthorized"] = nil
                components["responses"] = responses
            }
            root["components"] = components
        }
        for (path, operations) in paths {
            var stripped = operations
            for (method, value) in operations {
                guard var operation = value as? [String: Any] else { continue }
                operation["security"] = nil
                if var responses = operation["responses"] as? [String: Any] {
                    responses["401"] = nil
                    operation["responses"] = responses
                }
                stripped[method] = operation
            }
            paths[path] = stripped
        }
        root["paths"] = paths
        guard let data = try? JSONSerialization.data(withJSONObject: root, options: [.sortedKeys, .withoutEscapingSlashes]) else {
            preconditionFailure("the OpenAPI document without security does not serialise")
        }
        return Array(data)
    }

    static let predictResponses = #"""
{
      "200": {"description": "Predictions. A raw image gives predictions (and attention) at the top level; a multipart upload gives results, one per file.",
        "headers": {"Location": {"schema": {"type": "string"}, "description": "/v1/attention/{id} of this response"}},
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Prediction"}}}},
      "400": {"$ref": "#/components/responses/BadRequest"}, "401": {"$ref": "#/components/responses/Unauthorized"},
      "404": {"$ref": "#/components/responses/NotFound"}, "413": {"$ref": "#/components/responses/TooLarge"},
      "415": {"$ref": "#/components/responses/UnsupportedMediaType"}, "503": {"$ref": "#/components/responses/Unavailable"},
      "504": {"$ref": "#/components/responses/Timeout"}
    }
"""#

    static let text = #"""
{
  "openapi": "3.1.0",
  "info": {
    "title": "cbam-serve",
    "version": "1.0.0",
    "description": "CBAM-ResNet image classification with channel and spatial attention maps. Requests are batched dynamically (up to --max-batch-size images, waiting at most --max-batch-delay-ms). When an API key is configured, every route except /healthz, /readyz, /v2/health/live and /v2/health/ready needs 'Authorization: Bearer <key>'. Every error of the /v1 and service routes has the shape {\"error\": {\"code\", \"message\"}}; the /v2 (Open Inference Protocol) routes answer errors as that protocol requires, {\"error\": \"message\", \"code\": \"code\"}."
  },
  "servers": [{"url": "/"}],
  "security": [{"bearer": []}],
  "paths": {
    "/healthz": {"get": {"summary": "Liveness", "security": [], "responses": {"200": {"description": "The process is up", "content": {"application/json": {"schema": {"type": "object", "properties": {"status": {"const": "ok"}}}}}}}}},
    "/readyz": {"get": {"summary": "Readiness: model loaded and queue not saturated", "security": [], "responses": {
      "200": {"description": "Ready", "content": {"application/json": {"schema": {"type": "object", "properties": {"status": {"const": "ready"}, "model": {"type": "string"}}}}}},
      "503": {"$ref": "#/components/responses/Unavailable"}}}},
    "/metrics": {"get": {"summary": "Prometheus metrics (text exposition format)", "responses": {
      "200": {"description": "cbam_http_requests_total, cbam_http_request_duration_seconds, cbam_queue_depth, cbam_inference_batch_size, cbam_queue_wait_seconds, cbam_inference_duration_seconds, cbam_images_decoded_total, cbam_errors_total", "content": {"text/plain": {"schema": {"type": "string"}}}},
      "401": {"$ref": "#/components/responses/Unauthorized"}}}},
    "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}, "401": {"$ref": "#/components/responses/Unauthorized"}}}},
    "/v1/models": {"get": {"summary": "The models served (one: $MODEL)", "responses": {
      "200": {"description": "Model list", "content": {"application/json": {"schema": {"type": "object", "properties": {"models": {"type": "array", "items": {"$ref": "#/components/schemas/Model"}}}}}}},
      "401": {"$ref": "#/components/responses/Unauthorized"}}}},
    "/v1/models/{name}": {"get": {"summary": "One model: architecture, input, classes, CBAM layers and map shapes, parameter count", "parameters": [{"$ref": "#/components/parameters/ModelName"}], "responses": {
      "200": {"description": "The model", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Model"}}}},
      "401": {"$ref": "#/components/responses/Unauthorized"}, "404": {"$ref": "#/components/responses/NotFound"}}}},
    "/v1/predict": {"post": {"summary": "Classify one image (raw body) or several (multipart/form-data files)", "parameters": [
        {"$ref": "#/components/parameters/TopK"}, {"$ref": "#/components/parameters/Attention"}, {"$ref": "#/components/parameters/TimeoutMs"}],
      "requestBody": {"$ref": "#/components/requestBodies/Images"}, "responses": $PREDICT_RESPONSES}},
    "/v1/models/{name}/predict": {"post": {"summary": "As /v1/predict, naming the model", "parameters": [{"$ref": "#/components/parameters/ModelName"},
        {"$ref": "#/components/parameters/TopK"}, {"$ref": "#/components/parameters/Attention"}, {"$ref": "#/components/parameters/TimeoutMs"}],
      "requestBody": {"$ref": "#/components/requestBodies/Images"}, "responses": $PREDICT_RESPONSES}},
    "/v1/attention/{id}": {"get": {"summary": "Attention maps of a prediction response, as JSON or as a heat-map PNG", "parameters": [
        {"name": "id", "in": "path", "required": true, "schema": {"type": "string"}, "description": "The id of a /v1/predict response"},
        {"name": "layer", "in": "query", "schema": {"type": "string"}, "description": "A layer with attention such as layer4.2; for PNG the deepest layer by default (PNG needs a spatial map: CBAM only; SE and ECA layers answer 404 no_spatial_map)"},
        {"name": "kind", "in": "query", "schema": {"enum": ["channel", "spatial", "all"], "default": "all"}},
        {"name": "image", "in": "query", "schema": {"type": "integer", "minimum": 0}, "description": "Index of the image in a multi-file request (PNG: default 0)"},
        {"name": "format", "in": "query", "schema": {"enum": ["json", "png"], "default": "json"}},
        {"name": "overlay", "in": "query", "schema": {"enum": ["true", "false", "1", "0", "yes", "no", ""], "default": "false"}, "description": "PNG: blend the heat-map over the preprocessed input crop (letter case does not matter; an empty value means true)"},
        {"name": "colormap", "in": "query", "schema": {"enum": ["jet", "inferno", "gray"], "default": "jet"}}],
      "responses": {
        "200": {"description": "The maps", "content": {
          "application/json": {"schema": {"type": "object", "properties": {"id": {"type": "string"}, "model": {"type": "string"},
            "images": {"type": "array", "items": {"type": "object", "properties": {"index": {"type": "integer"}, "filename": {"type": ["string", "null"]},
              "attention": {"type": "array", "items": {"$ref": "#/components/schemas/AttentionLayer"}}}}}}}},
          "image/png": {"schema": {"type": "string", "contentMediaType": "image/png"}}}},
        "400": {"$ref": "#/components/responses/BadRequest"}, "401": {"$ref": "#/components/responses/Unauthorized"},
        "404": {"$ref": "#/components/responses/NotFound"}}}},
    "/v2": {"get": {"summary": "Open Inference Protocol server metadata", "responses": {"200": {"description": "Server metadata", "content": {"application/json": {"schema": {"type": "object", "properties": {"name": {"type": "string"}, "version": {"type": "string"}, "extensions": {"type": "array", "items": {"type": "string"}}}}}}}, "401": {"$ref": "#/components/responses/OIPUnauthorized"}}}},
    "/v2/health/live": {"get": {"summary": "OIP liveness", "security": [], "responses": {"200": {"description": "Live"}}}},
    "/v2/health/ready": {"get": {"summary": "OIP readiness", "security": [], "responses": {"200": {"description": "Ready"}, "503": {"$ref": "#/components/responses/OIPUnavailable"}}}},
    "/v2/models/{name}": {"get": {"summary": "OIP model metadata", "parameters": [{"$ref": "#/components/parameters/ModelName"}], "responses": {
      "200": {"description": "Inputs input (FP32 [-1,3,S,S]) and image (BYTES [-1,1]); outputs logits and probabilities (FP32 [-1,classes])", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OIPModelMetadata"}}}},
      "401": {"$ref": "#/components/responses/OIPUnauthorized"}, "404": {"$ref": "#/components/responses/OIPNotFound"}}}},
    "/v2/models/{name}/ready": {"get": {"summary": "OIP model readiness", "parameters": [{"$ref": "#/components/parameters/ModelName"}], "responses": {"200": {"description": "Ready"}, "401": {"$ref": "#/components/responses/OIPUnauthorized"}, "404": {"$ref": "#/components/responses/OIPNotFound"}, "503": {"$ref": "#/components/responses/OIPUnavailable"}}}},
    "/v2/models/{name}/config": {"get": {"summary": "Triton model configuration (max_batch_size, inputs, outputs), as perf_analyzer reads it", "parameters": [{"$ref": "#/components/parameters/ModelName"}], "responses": {"200": {"description": "Model configuration", "content": {"application/json": {"schema": {"type": "object"}}}}, "401": {"$ref": "#/components/responses/OIPUnauthorized"}, "404": {"$ref": "#/components/responses/OIPNotFound"}}}},
    "/v2/models/{name}/infer": {"post": {"summary": "OIP inference: one input, either input (FP32 [N,3,S,S], preprocessed) or image (BYTES [N] or [N,1] of JPEG/PNG files); outputs logits and probabilities. JSON tensors or the binary tensor data extension.",
      "parameters": [{"$ref": "#/components/parameters/ModelName"},
        {"name": "Inference-Header-Content-Length", "in": "header", "schema": {"type": "integer", "minimum": 0}, "description": "Binary tensor data extension: length of the JSON header; binary tensors follow it"}],
      "requestBody": {"required": true, "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/OIPInferenceRequest"}},
        "application/octet-stream": {"schema": {"type": "string", "contentMediaType": "application/octet-stream", "minLength": 1}, "description": "JSON header followed by binary tensor data"}}},
      "responses": {
        "200": {"description": "Outputs; with binary outputs the body is the JSON header (length in the Inference-Header-Content-Length response header) followed by little-endian FP32 data",
          "headers": {"Inference-Header-Content-Length": {"schema": {"type": "integer"}, "description": "Present when outputs are binary"}},
          "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OIPInferenceResponse"}}, "application/octet-stream": {"schema": {"type": "string"}}}},
        "400": {"$ref": "#/components/responses/OIPBadRequest"}, "401": {"$ref": "#/components/responses/OIPUnauthorized"},
        "404": {"$ref": "#/components/responses/OIPNotFound"}, "413": {"$ref": "#/components/responses/OIPTooLarge"},
        "415": {"$ref": "#/components/responses/OIPUnsupportedMediaType"}, "503": {"$ref": "#/components/responses/OIPUnavailable"},
        "504": {"$ref": "#/components/responses/OIPTimeout"}}}},
    "/v2/models/{name}/versions/{version}": {"get": {"summary": "As /v2/models/{name}, version 1 only", "parameters": [{"$ref": "#/components/parameters/ModelName"}, {"$ref": "#/components/parameters/Version"}], "responses": {"200": {"description": "Model metadata", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OIPModelMetadata"}}}}, "401": {"$ref": "#/components/responses/OIPUnauthorized"}, "404": {"$ref": "#/components/responses/OIPNotFound"}}}},
    "/v2/models/{name}/versions/{version}/ready": {"get": {"summary": "As /v2/models/{name}/ready", "parameters": [{"$ref": "#/components/parameters/ModelName"}, {"$ref": "#/components/parameters/Version"}], "responses": {"200": {"description": "Ready"}, "401": {"$ref": "#/components/responses/OIPUnauthorized"}, "404": {"$ref": "#/components/responses/OIPNotFound"}, "503": {"$ref": "#/components/responses/OIPUnavailable"}}}},
    "/v2/models/{name}/versions/{version}/config": {"get": {"summary": "As /v2/models/{name}/config", "parameters": [{"$ref": "#/components/parameters/ModelName"}, {"$ref": "#/components/parameters/Version"}], "responses": {"200": {"description": "Model configuration", "content": {"application/json": {"schema": {"type": "object"}}}}, "401": {"$ref": "#/components/responses/OIPUnauthorized"}, "404": {"$ref": "#/components/responses/OIPNotFound"}}}},
    "/v2/models/{name}/versions/{version}/infer": {"post": {"summary": "As /v2/models/{name}/infer", "parameters": [{"$ref": "#/components/parameters/ModelName"}, {"$ref": "#/components/parameters/Version"}],
      "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OIPInferenceRequest"}}, "application/octet-stream": {"schema": {"type": "string", "minLength": 1}}}},
      "responses": {"200": {"description": "Outputs", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OIPInferenceResponse"}}, "application/octet-stream": {"schema": {"type": "string"}}}},
        "400": {"$ref": "#/components/responses/OIPBadRequest"}, "401": {"$ref": "#/components/responses/OIPUnauthorized"}, "404": {"$ref": "#/components/responses/OIPNotFound"},
        "413": {"$ref": "#/components/responses/OIPTooLarge"}, "415": {"$ref": "#/components/responses/OIPUnsupportedMediaType"}, "503": {"$ref": "#/components/responses/OIPUnavailable"}, "504": {"$ref": "#/components/responses/OIPTimeout"}}}}
  },
  "components": {
    "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "Only when the server runs with --api-key / CBAM_API_KEY"}},
    "parameters": {
      "ModelName": {"name": "name", "in": "path", "required": true, "schema": {"enum": ["$MODEL"]}, "description": "The model this server serves (any other name: 404)"},
      "Version": {"name": "version", "in": "path", "required": true, "schema": {"const": "1"}},
      "TopK": {"name": "top_k", "in": "query", "schema": {"type": "integer", "minimum": 1, "default": 5}, "description": "Classes to return (at most the number of classes)"},
      "Attention": {"name": "attention", "in": "query", "schema": {"enum": ["none", "channel", "spatial", "all"], "default": "none"}, "description": "Which attention maps to include in the response (all are kept for /v1/attention/{id} either way)"},
      "TimeoutMs": {"name": "timeout_ms", "in": "query", "schema": {"type": "integer", "minimum": 1}, "description": "Deadline of this request, overriding --request-timeout-ms"}
    },
    "requestBodies": {
      "Images": {"required": true, "content": {
        "image/jpeg": {"schema": {"type": "string", "contentMediaType": "image/jpeg", "minLength": 1}},
        "image/png": {"schema": {"type": "string", "contentMediaType": "image/png", "minLength": 1}},
        "application/octet-stream": {"schema": {"type": "string", "minLength": 1}, "description": "JPEG or PNG, recognised by its bytes"},
        "multipart/form-data": {"schema": {"type": "object", "minProperties": 1, "additionalProperties": {"type": "string", "contentMediaType": "application/octet-stream"}}, "description": "One or more image files (at most --max-batch-size); one result per file"}}}
    },
    "responses": {
      "BadRequest": {"description": "Malformed request or image (e.g. corrupt_image, truncated_image, invalid_parameter, too_many_images)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "Unauthorized": {"description": "Missing or wrong API key (code unauthorized)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "NotFound": {"description": "Unknown model, attention id, layer or image index", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "TooLarge": {"description": "Body over --max-body-bytes, or an image with too many pixels", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "UnsupportedMediaType": {"description": "Not JPEG or PNG, or a Content-Type the route does not take", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "Unavailable": {"description": "Queue full or shutting down; retry after Retry-After seconds", "headers": {"Retry-After": {"schema": {"type": "integer"}}}, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "Timeout": {"description": "No result within the request's deadline (code deadline_exceeded); the image was dropped", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "OIPBadRequest": {"description": "Malformed inference request or image (Open Inference Protocol error shape)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OIPError"}}}},
      "OIPUnauthorized": {"description": "Missing or wrong API key (Open Inference Protocol error shape)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OIPError"}}}},
      "OIPNotFound": {"description": "Unknown model or version (Open Inference Protocol error shape)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OIPError"}}}},
      "OIPTooLarge": {"description": "Body over --max-body-bytes, or an image with too many pixels (Open Inference Protocol error shape)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OIPError"}}}},
      "OIPUnsupportedMediaType": {"description": "Not JPEG or PNG, or a Content-Type other than application/json or application/octet-stream (Open Inference Protocol error shape)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OIPError"}}}},
      "OIPUnavailable": {"description": "Queue full or not ready; retry after Retry-After seconds (Open Inference Protocol error shape)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OIPError"}}}},
      "OIPTimeout": {"description": "No result within the request's deadline (Open Inference Protocol error shape)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OIPError"}}}}
    },
    "schemas": {
      "OIPError": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string", "description": "The sentence"}, "code": {"type": "string"}}, "description": "The Open Inference Protocol's error object, which tritonclient and KServe clients parse; the /v2 routes use it, with the code alongside"},
      "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}},
      "ClassPrediction": {"type": "object", "properties": {"index": {"type": "integer"}, "label": {"type": "string"}, "probability": {"type": "number"}}},
      "AttentionLayer": {"type": "object", "required": ["layer"], "properties": {"layer": {"type": "string"}, "channel": {"type": "array", "items": {"type": "number"}},
        "spatial": {"type": ["object", "null"], "description": "Left out when not asked for; null when asked for but the layer's attention (SE, ECA) has no spatial map", "properties": {"height": {"type": "integer"}, "width": {"type": "integer"}, "data": {"type": "array", "items": {"type": "number"}}}}}},
      "ImageResult": {"type": "object", "properties": {"index": {"type": "integer"}, "filename": {"type": ["string", "null"]},
        "predictions": {"type": "array", "items": {"$ref": "#/components/schemas/ClassPrediction"}}, "attention": {"type": "array", "items": {"$ref": "#/components/schemas/AttentionLayer"}}}},
      "Prediction": {"type": "object", "required": ["id", "model", "timing"], "properties": {
        "id": {"type": "string"}, "model": {"type": "string"},
        "predictions": {"type": "array", "items": {"$ref": "#/components/schemas/ClassPrediction"}},
        "attention": {"type": "array", "items": {"$ref": "#/components/schemas/AttentionLayer"}},
        "results": {"type": "array", "items": {"$ref": "#/components/schemas/ImageResult"}},
        "timing": {"type": "object", "properties": {"decode_ms": {"type": "number"}, "preprocess_ms": {"type": "number"}, "queue_ms": {"type": "number"}, "inference_ms": {"type": "number"}, "batch_size": {"type": "integer"}, "batch_requests": {"type": "integer"}, "total_ms": {"type": "number"}}}}},
      "Model": {"type": "object", "properties": {"name": {"type": "string"}, "architecture": {"type": "object"}, "input": {"type": "object"}, "num_classes": {"type": "integer"}, "labels": {"type": "array", "items": {"type": "string"}},
        "cbam_layers": {"type": "array", "description": "Every layer with attention (CBAM, SE or ECA)", "items": {"type": "object", "properties": {"layer": {"type": "string"}, "type": {"enum": ["cbam", "se", "eca"]}, "channels": {"type": "integer"}, "hidden": {"type": ["integer", "null"], "description": "Width of the channel MLP; null for ECA"}, "kernel_size": {"type": ["integer", "null"], "description": "CBAM's spatial or ECA's 1-D kernel; null for SE"}, "channel_shape": {"type": "array", "items": {"type": "integer"}}, "spatial_shape": {"type": ["array", "null"], "items": {"type": "integer"}, "description": "null where the layer has no spatial map (SE, ECA)"}}}},
        "parameters": {"type": "integer"}, "multiply_adds": {"type": "integer"}, "max_batch_size": {"type": "integer"}}},
      "OIPTensorMetadata": {"type": "object", "properties": {"name": {"type": "string"}, "datatype": {"type": "string"}, "shape": {"type": "array", "items": {"type": "integer"}}}},
      "OIPModelMetadata": {"type": "object", "properties": {"name": {"type": "string"}, "versions": {"type": "array", "items": {"type": "string"}}, "platform": {"type": "string"},
        "inputs": {"type": "array", "items": {"$ref": "#/components/schemas/OIPTensorMetadata"}}, "outputs": {"type": "array", "items": {"$ref": "#/components/schemas/OIPTensorMetadata"}}}},
      "OIPInferenceRequest": {"type": "object", "required": ["inputs"], "properties": {"id": {"type": "string"},
        "parameters": {"type": "object", "properties": {"binary_data_output": {"type": "boolean"}, "timeout_ms": {"type": "integer", "minimum": 1}}},
        "inputs": {"type": "array", "minItems": 1, "maxItems": 1, "items": {"type": "object", "required": ["name", "datatype", "shape"],
          "properties": {"name": {"enum": ["input", "image"]}, "datatype": {"enum": ["FP32", "BYTES"]}, "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "data": {"type": "array", "description": "Row-major values, flat or nested: numbers for FP32, strings for BYTES; as many as the shape says"},
            "parameters": {"type": "object", "properties": {"binary_data_size": {"type": "integer", "minimum": 0, "description": "Bytes of this input in the binary data after the JSON header"}}}},
          "anyOf": [{"properties": {"name": {"const": "input"}, "datatype": {"const": "FP32"}}}, {"properties": {"name": {"const": "image"}, "datatype": {"const": "BYTES"}}}],
          "oneOf": [
            {"description": "JSON tensor data", "required": ["data"], "properties": {"parameters": {"properties": {"binary_data_size": false}}}},
            {"description": "Binary tensor data (a data member, if any, is ignored)", "required": ["parameters"], "properties": {"parameters": {"required": ["binary_data_size"]}}}]}},
        "outputs": {"type": "array", "items": {"type": "object", "required": ["name"], "properties": {"name": {"enum": ["logits", "probabilities"]}, "parameters": {"type": "object", "properties": {"binary_data": {"type": "boolean"}}}}}}}},
      "OIPInferenceResponse": {"type": "object", "properties": {"model_name": {"type": "string"}, "model_version": {"type": "string"}, "id": {"type": "string"},
        "outputs": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}, "datatype": {"const": "FP32"}, "shape": {"type": "array", "items": {"type": "integer"}}, "data": {"type": "array", "items": {"type": "number"}}, "parameters": {"type": "object", "properties": {"binary_data_size": {"type": "integer"}}}}}}}}
    }
  }
}
"""#
}
