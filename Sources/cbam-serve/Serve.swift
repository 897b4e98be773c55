import ArgumentParser
import CBAMEngine
import CBAMService
import Foundation
import HTTPServer
import Logging

/// `cbam-serve serve`: the HTTP inference service. Every flag can also come from its environment variable;
/// a flag given on the command line wins over the variable, which wins over the default.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve a model over HTTP: /v1 REST API with attention maps, Open Inference Protocol (/v2), /metrics.",
        discussion: """
            Every option can also be set by the environment variable named in its help; the command line wins.
            SIGTERM or SIGINT stops accepting connections, lets requests in flight finish (--drain-timeout-s) \
            and exits 0.
            """)

    @Option(help: "Address to bind. (env CBAM_HOST, default \(Serve.http.host))")
    var host: String?
    @Option(help: "Port to listen on; 0 picks a free one. (env CBAM_PORT, default \(Serve.http.port))")
    var port: Int?
    @Option(help: "Model directory (config.json, model.safetensors, labels.txt). (env CBAM_MODEL, default \(Serve.defaultModelPath))")
    var model: String?
    @Option(help: "Require 'Authorization: Bearer <key>' on every route but the health probes. (env CBAM_API_KEY, default none)")
    var apiKey: String?
    @Option(help: "Most images in one engine call. (env CBAM_MAX_BATCH_SIZE, default \(Serve.service.maxBatchSize))")
    var maxBatchSize: Int?
    @Option(help: "Longest a queued request waits, once the engine is free, for requests known to be coming (still decoding, or the last batch's clients) to share their batch, in ms; a request with nothing on the way runs at once. (env CBAM_MAX_BATCH_DELAY_MS, default \(text(Serve.service.maxBatchDelay, in: .milliseconds(1))))")
    var maxBatchDelayMs: Double?
    @Option(help: "Most images waiting for the engine; beyond it requests get 503 + Retry-After. (env CBAM_MAX_QUEUE, default \(Serve.service.maxQueue))")
    var maxQueue: Int?
    @Option(help: "Deadline of a request in ms (504 past it); a request may set its own with timeout_ms. (env CBAM_REQUEST_TIMEOUT_MS, default \(text(Serve.service.requestTimeout, in: .milliseconds(1))))")
    var requestTimeoutMs: Int?
    @Option(help: "Threads a forward pass may use. (env CBAM_THREADS, default: the cores this process may use, from its affinity mask and cgroup CPU quota)")
    var threads: Int?
    @Option(help: "Threads that decode and preprocess uploads, apart from the request threads. (env CBAM_DECODE_THREADS, default: half the cores --threads defaults to, at least 1)")
    var decodeThreads: Int?
    @Option(help: "Largest request body in bytes (413 beyond). (env CBAM_MAX_BODY_BYTES, default \(Serve.http.maxBodyBytes) = \(Serve.http.maxBodyBytes >> 20) MiB)")
    var maxBodyBytes: Int?
    @Option(help: "Seconds a request body may take to arrive in all, however steadily it trickles (408 past it). (env CBAM_BODY_TIMEOUT_S, default \(text(Serve.http.bodyTimeout, in: .seconds(1))))")
    var bodyTimeoutS: Double?
    @Option(help: "Most open connections (503 beyond). (env CBAM_MAX_CONNECTIONS, default \(Serve.http.maxConnections))")
    var maxConnections: Int?
    @Option(help: "Seconds to let requests in flight finish on SIGTERM/SIGINT. (env CBAM_DRAIN_TIMEOUT_S, default \(text(Serve.http.drainTimeout, in: .seconds(1))))")
    var drainTimeoutS: Double?
    @Option(help: "trace, debug, info, notice, warning, error or critical. (env CBAM_LOG_LEVEL, default \(Serve.defaultLogLevel.rawValue))")
    var logLevel: String?
    @Option(help: "Prediction responses whose attention maps are kept for /v1/attention/{id}; 0 keeps none. (env CBAM_ATTENTION_STORE_SIZE, default \(Serve.service.attentionStoreEntries))")
    var attentionStoreSize: Int?
    @Option(help: "Seconds attention maps are kept. (env CBAM_ATTENTION_TTL_S, default \(text(Serve.service.attentionTTL, in: .seconds(1))))")
    var attentionTtlS: Double?

    static let defaultModelPath = ModelDirectory.defaultPath
    /// The defaults of the service and of the HTTP server: the help text above and the fallbacks below read them.
    static let service = ServiceConfiguration.default
    static let http = HTTPServer.Configuration.default
    static let defaultLogLevel = Logger.Level.info

    func run() async throws {
        let env = ProcessInfo.processInfo.environment
        func value<T>(_ flag: T?, _ name: String, _ fallback: T, _ parse: (String) -> T?) throws -> T {
            if let flag { return flag }
            guard let text = env[name], !text.isEmpty else { return fallback }
            guard let parsed = parse(text) else { throw ValidationError("\(name)=\"\(text)\" is not a valid value") }
            return parsed
        }
        func int(_ flag: Int?, _ name: String, _ fallback: Int, minimum: Int = 0) throws -> Int {
            let result = try value(flag, name, fallback) { Int($0) }
            guard result >= minimum else { throw ValidationError("\(name) must be >= \(minimum), got \(result)") }
            return result
        }
        func double(_ flag: Double?, _ name: String, _ fallback: Double) throws -> Double {
            let result = try value(flag, name, fallback) { Double($0) }
            guard result >= 0, result.isFinite else { throw ValidationError("\(name) must be >= 0, got \(result)") }
            return result
        }

        let levelName = try value(logLevel, "CBAM_LOG_LEVEL", Self.defaultLogLevel.rawValue) { $0 }
        guard let level = Logger.Level(rawValue: levelName.lowercased()) else {
            throw ValidationError("log level \"\(levelName)\" is not one of trace, debug, info, notice, warning, error, critical")
        }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "cbam-serve")

        var service = ServiceConfiguration.default
        service.maxBatchSize = try int(maxBatchSize, "CBAM_MAX_BATCH_SIZE", service.maxBatchSize, minimum: 1)
        service.maxBatchDelay = .microseconds(Int64(try double(maxBatchDelayMs, "CBAM_MAX_BATCH_DELAY_MS",
                                                               service.maxBatchDelay / .milliseconds(1)) * 1000))
        service.maxQueue = try int(maxQueue, "CBAM_MAX_QUEUE", service.maxQueue, minimum: 1)
        service.requestTimeout = .milliseconds(try int(requestTimeoutMs, "CBAM_REQUEST_TIMEOUT_MS",
                                                       Int(service.requestTimeout / .milliseconds(1)), minimum: 1))
        service.apiKey = apiKey ?? env["CBAM_API_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        service.attentionStoreEntries = try int(attentionStoreSize, "CBAM_ATTENTION_STORE_SIZE", service.attentionStoreEntries)
        service.attentionTTL = .milliseconds(Int64(try double(attentionTtlS, "CBAM_ATTENTION_TTL_S",
                                                              service.attentionTTL / .seconds(1)) * 1000))

        var http = HTTPServer.Configuration.default
        http.host = try value(host, "CBAM_HOST", http.host) { $0 }
        http.port = try int(port, "CBAM_PORT", http.port)
        guard http.port <= 65535 else { throw ValidationError("port must be 0...65535, got \(http.port)") }
        http.limits.maxBodyBytes = try int(maxBodyBytes, "CBAM_MAX_BODY_BYTES", http.maxBodyBytes, minimum: 1)
        http.bodyTimeout = .milliseconds(Int64(try double(bodyTimeoutS, "CBAM_BODY_TIMEOUT_S",
                                                          http.bodyTimeout / .seconds(1)) * 1000))
        guard http.bodyTimeout > .zero else { throw ValidationError("CBAM_BODY_TIMEOUT_S must be > 0") }
        http.maxConnections = try int(maxConnections, "CBAM_MAX_CONNECTIONS", http.maxConnections, minimum: 1)
        http.drainTimeout = .milliseconds(Int64(try double(drainTimeoutS, "CBAM_DRAIN_TIMEOUT_S",
                                                           http.drainTimeout / .seconds(1)) * 1000))

        let cores = AvailableCores.count
        service.decodeThreads = try int(decodeThreads, "CBAM_DECODE_THREADS", service.decodeThreads, minimum: 1)
        BLASThreads.set(try int(threads, "CBAM_THREADS", cores, minimum: 1))

        let directory = try value(model, "CBAM_MODEL", Self.defaultModelPath) { $0 }
        let loaded: CBAMModel
        do {
            loaded = try CBAMModel.load(directory: URL(fileURLWithPath: directory, isDirectory: true))
        } catch {
            throw ValidationError("cannot load the model in \(directory): \(error.message)")
        }
        // Each batch size's first pass measures its execution plan (on the default model up to 10x a pass): done
        // here for every size the queue can form, so that no request pays for it.
        do {
            let took = try loaded.warmUp(batchSizes: 1...service.maxBatchSize)
            logger.info("execution plans measured", metadata: [
                "batch_sizes": "1-\(service.maxBatchSize)", "ms": "\(Int(took / .milliseconds(1)))",
                "gemm_kernel": "\(GEMMKernel.instructionSet)"])
        } catch {
            throw ValidationError("cannot run the model: \(error.message)")
        }
        let inference = InferenceService(model: loaded, configuration: service, logger: logger)
        let server = HTTPServer(configuration: http, router: inference.makeRouter(), logger: logger,
                                observer: inference.observer)
        try server.start()
        logger.info("serving", metadata: [
            "model": "\(inference.modelName)", "host": "\(http.host)", "port": "\(server.boundPort)",
            "max_batch_size": "\(service.maxBatchSize)", "max_batch_delay": "\(service.maxBatchDelay)",
            "threads": "\(BLASThreads.count)", "api_key": "\(service.apiKey == nil ? "off" : "on")",
        ])
        await server.runUntilSignalled()
        await inference.shutdown()
        logger.info("bye")
    }
}

/// A duration as the number a flag takes in `unit`, without a fraction when it is whole ("2", "0.5").
private func text(_ duration: Duration, in unit: Duration) -> String {
    let value = duration / unit
    return value == value.rounded() ? String(Int(value)) : String(value)
}
