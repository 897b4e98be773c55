// Every knob of the server, with defaults fit for a container facing the open network.
import Logging
import Glibc

extension HTTPServer {
    public struct Configuration: Sendable {
        /// The defaults; `cbam-serve serve` reads its help text and fallbacks here.
        public static let `default` = Configuration()

        /// Address to bind ("0.0.0.0", "127.0.0.1", "::").
        public var host: String = "0.0.0.0"
        /// Port to bind; 0 picks a free one (see `HTTPServer.boundPort`).
        public var port: Int = 8080
        public var backlog: Int32 = 1024
        /// Connections beyond this are answered 503 and closed.
        public var maxConnections: Int = 4096
        /// Request size limits: URI (414), header section (431), body (413).
        public var limits = HTTPParser.Limits()
        /// From a request's first byte (or the connection's accept) to the end of its head; then 408.
        public var headerReadTimeout: Duration = .seconds(10)
        /// Longest silence while a body is being received; then 408.
        public var bodyReadTimeout: Duration = .seconds(30)
        /// Longest time a whole body may take to arrive, from the end of its head, however steadily it trickles
        /// (a client sending a byte now and then never trips `bodyReadTimeout`); then 408.
        public var bodyTimeout: Duration = .seconds(300)
        /// How long a keep-alive connection may wait for its next request before it is closed.
        public var idleTimeout: Duration = .seconds(60)
        /// Longest time a client may take to accept written bytes before it is dropped.
        public var writeTimeout: Duration = .seconds(30)
        /// How long `runUntilSignalled` lets in-flight requests finish after SIGTERM/SIGINT.
        public var drainTimeout: Duration = .seconds(10)
        /// On drain, how long an idle keep-alive connection still answers a request (with `Connection: close`)
        /// before it closes: a client that sent one just as the signal came gets its response, not a reset.
        public var drainIdleGrace: Duration = .milliseconds(100)
        /// On drain, how long a connection that had its last response keeps reading (and discarding) before it
        /// closes; `lingerTimeout` outside a drain. Long enough for the peer to read the response, not a reset.
        public var drainLingerTimeout: Duration = .milliseconds(100)
        public var lingerTimeout: Duration = .seconds(2)
        /// Bytes a lingering connection discards before it closes at once.
        public var lingerByteLimit = 1 << 20
        /// `recv` calls per readable event before the connection yields its event loop.
        public var readsPerWakeup = 4
        /// Pipelined requests answered in one turn before the connection yields its event loop.
        public var pipelinedRequestsPerTurn = 64
        /// Input buffered beyond this while a handler runs stops reading (backpressure on pipelining clients).
        public var pipelineBufferLimit = 256 * 1024
        /// The `Retry-After` seconds of the 503 at the connection limit.
        public var retryAfterSeconds = 1
        /// Number of serial event queues the connections are spread over.
        public var eventLoops: Int = max(1, min(Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))), 8))
        /// Level of the one access-log line per response; nil turns access logs off.
        public var accessLogLevel: Logger.Level? = .info

        /// Largest request body (413); the same as `limits.maxBodyBytes`, named like the `--max-body-bytes` flag.
        public var maxBodyBytes: Int {
            get { limits.maxBodyBytes }
            set { limits.maxBodyBytes = newValue }
        }

        public init() {}

        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
    }
}
