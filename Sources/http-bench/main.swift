// A tiny server for load tests of HTTPServer alone (docs/http-performance.md): GET /hello and GET /json.
//   http-bench [--port 8080] [--host 127.0.0.1] [--event-loops N] [--access-log]
import HTTPServer
import Logging
#if canImport(Glibc)
import Glibc
#endif

var configuration = HTTPServer.Configuration(host: "127.0.0.1", port: 8080)
configuration.accessLogLevel = nil
var arguments = CommandLine.arguments.dropFirst()
while let flag = arguments.popFirst() {
    switch flag {
    case "--port": configuration.port = Int(arguments.popFirst() ?? "") ?? 8080
    case "--host": configuration.host = arguments.popFirst() ?? "127.0.0.1"
    case "--event-loops": configuration.eventLoops = Int(arguments.popFirst() ?? "") ?? configuration.eventLoops
    case "--access-log": configuration.accessLogLevel = .info
    default:
        print("usage: http-bench [--port N] [--host ADDR] [--event-loops N] [--access-log]")
        exit(2)
    }
}

struct Greeting: Codable { var message: String; var count: Int }

LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
let router = Router()
router.get("/hello") { _ in .text("hello") }
router.get("/json") { _ in .json(Greeting(message: "hello", count: 1)) }
let server = HTTPServer(configuration: configuration, router: router, logger: Logger(label: "http-bench"))
do {
    try server.start()
} catch {
    print("http-bench: \(error)")
    exit(1)
}
await server.runUntilSignalled()
