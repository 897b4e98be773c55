// Serializes responses: status line, the handler's headers (sanitized), then the framing headers the server owns.
import Glibc

struct HTTPResponseEncoder {
    private var dateSecond = -1
    private var dateValue: [UInt8] = []

    static let continueResponse = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)

    /// Headers the server writes itself; a handler's copies are dropped.
    private static let ownedHeaders = ["Content-Length", "Transfer-Encoding", "Date", "Connection", "X-Request-Id", "Keep-Alive"]

    /// The head, with the body appended when it is small (one write), else returned apart.
    /// `omitBody` is for HEAD: Content-Length still states what GET would send.
    mutating func encode(_ response: HTTPResponse, requestID: String, connection: String?, omitBody: Bool) -> (bytes: [UInt8], body: [UInt8]?) {
        var out: [UInt8] = []
        out.reserveCapacity(256 + (response.body.count <= 16 * 1024 ? response.body.count : 0))
        out.append(contentsOf: "HTTP/1.1 ".utf8)
        appendDecimal(response.status.code, to: &out)
        out.append(0x20)
        appendSanitized(response.status.reason, to: &out)
        out.append(contentsOf: [0x0D, 0x0A])
        for (name, value) in response.headers {
            guard !name.isEmpty, name.utf8.allSatisfy(isTokenByte), value.utf8.allSatisfy(isFieldValueByte),
                  !Self.ownedHeaders.contains(where: { HTTPHeaders.namesEqual($0, name) }) else { continue }
            appendHeader(name, value, to: &out)
        }
        if response.status.allowsBody {
            out.append(contentsOf: "Content-Length: ".utf8)
            appendDecimal(response.body.count, to: &out)
            out.append(contentsOf: [0x0D, 0x0A])
        }
        out.append(contentsOf: "Date: ".utf8)
        out.append(contentsOf: currentDate())
        out.append(contentsOf: [0x0D, 0x0A])
        if let connection { appendHeader("Connection", connection, to: &out) }
        appendHeader("X-Request-Id", requestID, to: &out)
        out.append(contentsOf: [0x0D, 0x0A])
        if omitBody || !response.status.allowsBody || response.body.isEmpty { return (out, nil) }
        if response.body.count <= 16 * 1024 {
            out.append(contentsOf: response.body)
            return (out, nil)
        }
        return (out, response.body)
    }

    private func appendHeader(_ name: String, _ value: String, to out: inout [UInt8]) {
        out.append(contentsOf: name.utf8)
        out.append(contentsOf: [UInt8(ascii: ":"), 0x20])
        out.append(contentsOf: value.utf8)
        out.append(contentsOf: [0x0D, 0x0A])
    }

    private func appendSanitized(_ text: String, to out: inout [UInt8]) {
        for b in text.utf8 { out.append(isFieldValueByte(b) ? b : 0x20) }
    }

    private func appendDecimal(_ value: Int, to out: inout [UInt8]) {
        if value == 0 { out.append(0x30); return }
        var digits: [UInt8] = []
        var v = value
        while v > 0 { digits.append(UInt8(v % 10) + 0x30); v /= 10 }
        out.append(contentsOf: digits.reversed())
    }

    /// IMF-fixdate (RFC 9110 §5.6.7), formatted once per second.
    private mutating func currentDate() -> [UInt8] {
        let now = time(nil)
        if Int(now) == dateSecond { return dateValue }
        dateSecond = Int(now)
        dateValue = Array(Self.imfFixdate(now).utf8)
        return dateValue
    }

    static func imfFixdate(_ t: time_t) -> String {
        var t = t
        var parts = tm()
        gmtime_r(&t, &parts)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}
