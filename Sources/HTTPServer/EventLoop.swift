// A serial Dispatch queue that owns a share of the connections, like an event loop: their read/write
// sources and timers fire on it, so a connection's state needs no lock.
import Dispatch

final class EventLoop: @unchecked Sendable {  // `scratch` and `encoder` are touched only on `queue`
    let queue: DispatchQueue
    /// One read buffer shared by all connections of this loop (they run one at a time).
    let scratch: UnsafeMutableRawBufferPointer
    var encoder = HTTPResponseEncoder()

    init(index: Int) {
        queue = DispatchQueue(label: "http.event-loop.\(index)", qos: .userInitiated)
        scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
    }

    deinit { scratch.deallocate() }
}
