import Synchronization

/// Something whose memory footprint the store can count.
public protocol ByteCounted {
    var byteCount: Int { get }
}

/// Attention maps of recent responses, kept under the response id so a client can fetch them afterwards.
/// Bounded by entry count and by bytes (oldest evicted first) and by age (a TTL).
public final class AttentionStore<Value: Sendable & ByteCounted>: Sendable {
    public struct Limits: Sendable {
        public var maxEntries: Int
        public var maxBytes: Int
        public var timeToLive: Duration
        public init(maxEntries: Int = 1024, maxBytes: Int = 256 << 20, timeToLive: Duration = .seconds(600)) {
            self.maxEntries = max(0, maxEntries)
            self.maxBytes = max(0, maxBytes)
            self.timeToLive = timeToLive
        }
    }

    private struct Entry {
        let value: Value
        let bytes: Int
        let storedAt: ContinuousClock.Instant
        let sequence: UInt64
    }

    /// Everything that changes, behind one lock.
    private struct State {
        var entries: [String: Entry] = [:]
        var order: [(id: String, sequence: UInt64)] = []   // insertion order, oldest first; may hold stale ids
        var head = 0
        var sequence: UInt64 = 0
        var bytes = 0

        mutating func evictExpired(at time: ContinuousClock.Instant, timeToLive: Duration) {
            while head < order.count {
                let (id, sequence) = order[head]
                guard let entry = entries[id], entry.sequence == sequence else { advance(); continue }
                guard entry.storedAt.duration(to: time) >= timeToLive else { break }
                entries.removeValue(forKey: id)
                bytes -= entry.bytes
                advance()
            }
        }

        mutating func evictOldest() {
            while head < order.count {
                let (id, sequence) = order[head]
                advance()
                if let entry = entries[id], entry.sequence == sequence {
                    entries.removeValue(forKey: id)
                    bytes -= entry.bytes
                    return
                }
            }
        }

        private mutating func advance() {
            head += 1
            if head > 64 && head * 2 > order.count {       // compact now and then so `order` stays small
                order.removeFirst(head)
                head = 0
            }
        }
    }

    public let limits: Limits
    private let now: @Sendable () -> ContinuousClock.Instant
    private let state = Mutex(State())

    public init(limits: Limits = .init(), now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }) {
        self.limits = limits
        self.now = now
    }

    /// Stores `value` under `id`; returns false when it can never fit (larger than `maxBytes`, or the store is off).
    @discardableResult
    public func insert(_ value: Value, for id: String) -> Bool {
        let size = value.byteCount
        guard limits.maxEntries > 0, size <= limits.maxBytes else { return false }
        let time = now()
        state.withLock { s in
            if let old = s.entries.removeValue(forKey: id) { s.bytes -= old.bytes }
            s.evictExpired(at: time, timeToLive: limits.timeToLive)
            while s.entries.count >= limits.maxEntries || s.bytes + size > limits.maxBytes { s.evictOldest() }
            s.sequence += 1
            s.entries[id] = Entry(value: value, bytes: size, storedAt: time, sequence: s.sequence)
            s.order.append((id, s.sequence))
            s.bytes += size
        }
        return true
    }

    /// The value stored under `id`, unless it expired or was evicted.
    public func value(for id: String) -> Value? {
        let time = now()
        return state.withLock { s in
            s.evictExpired(at: time, timeToLive: limits.timeToLive)
            return s.entries[id]?.value
        }
    }

    public var count: Int { state.withLock { $0.entries.count } }
    public var byteCount: Int { state.withLock { $0.bytes } }
}
