import Foundation
import Testing
@testable import CBAMService

struct Blob: ByteCounted, Sendable, Equatable {
    var tag: Int
    var byteCount: Int
}

/// A clock the test moves by hand.
final class ManualClock: @unchecked Sendable {
    private let lock = NSLock()
    private var instant = ContinuousClock.now
    var now: ContinuousClock.Instant { lock.withLock { instant } }
    func advance(_ duration: Duration) { lock.withLock { instant += duration } }
}

@Suite struct AttentionStoreTests {
    @Test func storesAndReturnsByID() {
        let store = AttentionStore<Blob>()
        #expect(store.insert(Blob(tag: 1, byteCount: 10), for: "a"))
        #expect(store.insert(Blob(tag: 2, byteCount: 10), for: "b"))
        #expect(store.value(for: "a")?.tag == 1)
        #expect(store.value(for: "b")?.tag == 2)
        #expect(store.value(for: "c") == nil)
        #expect(store.byteCount == 20)
    }

    @Test func evictsTheOldestBeyondTheEntryLimit() {
        let store = AttentionStore<Blob>(limits: .init(maxEntries: 3, maxBytes: 1 << 20))
        for i in 0..<5 { store.insert(Blob(tag: i, byteCount: 1), for: "id\(i)") }
        #expect(store.count == 3)
        #expect(store.value(for: "id0") == nil)
        #expect(store.value(for: "id1") == nil)
        for i in 2..<5 { #expect(store.value(for: "id\(i)")?.tag == i) }
    }

    @Test func evictsTheOldestBeyondTheByteLimitAndRefusesWhatCanNeverFit() {
        let store = AttentionStore<Blob>(limits: .init(maxEntries: 100, maxBytes: 100))
        store.insert(Blob(tag: 0, byteCount: 40), for: "a")
        store.insert(Blob(tag: 1, byteCount: 40), for: "b")
        store.insert(Blob(tag: 2, byteCount: 40), for: "c")      // pushes "a" out
        #expect(store.value(for: "a") == nil)
        #expect(store.value(for: "b") != nil && store.value(for: "c") != nil)
        #expect(store.byteCount == 80)
        #expect(!store.insert(Blob(tag: 3, byteCount: 101), for: "huge"))
        #expect(store.value(for: "huge") == nil)
        #expect(store.byteCount == 80)
    }

    @Test func entriesExpireAfterTheirTimeToLive() {
        let clock = ManualClock()
        let store = AttentionStore<Blob>(limits: .init(timeToLive: .seconds(60)), now: { clock.now })
        store.insert(Blob(tag: 0, byteCount: 5), for: "old")
        clock.advance(.seconds(30))
        store.insert(Blob(tag: 1, byteCount: 5), for: "new")
        clock.advance(.seconds(31))
        #expect(store.value(for: "old") == nil)
        #expect(store.value(for: "new")?.tag == 1)
        #expect(store.byteCount == 5)
        clock.advance(.seconds(30))
        #expect(store.value(for: "new") == nil)
        #expect(store.count == 0)
    }

    @Test func replacingAnIDKeepsTheByteCountRight() {
        let store = AttentionStore<Blob>(limits: .init(maxEntries: 10, maxBytes: 100))
        store.insert(Blob(tag: 0, byteCount: 60), for: "x")
        store.insert(Blob(tag: 1, byteCount: 70), for: "x")
        #expect(store.value(for: "x")?.tag == 1)
        #expect(store.byteCount == 70)
        #expect(store.count == 1)
    }

    @Test func aZeroSizedStoreKeepsNothing() {
        let store = AttentionStore<Blob>(limits: .init(maxEntries: 0))
        #expect(!store.insert(Blob(tag: 0, byteCount: 1), for: "a"))
        #expect(store.value(for: "a") == nil)
    }

    @Test func survivesConcurrentUse() async {
        let store = AttentionStore<Blob>(limits: .init(maxEntries: 50, maxBytes: 10_000))
        await withTaskGroup(of: Void.self) { group in
            for i in 0..<400 {
                group.addTask {
                    store.insert(Blob(tag: i, byteCount: 10), for: "k\(i)")
                    _ = store.value(for: "k\(i / 2)")
                }
            }
        }
        #expect(store.count == 50)
        #expect(store.byteCount == 500)
    }
}

@Suite struct AttentionStoreReplacementTests {
    @Test func aReplacedIDIsNotEvictedByItsStaleSlot() {
        let store = AttentionStore<Blob>(limits: .init(maxEntries: 2, maxBytes: 1000))
        store.insert(Blob(tag: 0, byteCount: 1), for: "x")
        store.insert(Blob(tag: 1, byteCount: 1), for: "y")
        store.insert(Blob(tag: 2, byteCount: 1), for: "x")     // x is now the newest
        store.insert(Blob(tag: 3, byteCount: 1), for: "z")     // so y, the oldest, goes
        #expect(store.value(for: "y") == nil)
        #expect(store.value(for: "x")?.tag == 2)
        #expect(store.value(for: "z")?.tag == 3)
    }
}
