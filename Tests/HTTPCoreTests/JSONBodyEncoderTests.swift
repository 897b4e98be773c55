import Foundation
import Testing
import HTTPCore

/// `JSONBodyEncoder` is the one encoder of the responses: it must write what JSONEncoder writes (as values), in
/// the order the fields are encoded.
@Suite struct JSONBodyEncoderTests {
    struct Inner: Codable, Equatable {
        var name: String
        var values: [Float]
        var counts: [Int]
        var flag: Bool
        var note: String?
    }

    struct Outer: Codable, Equatable {
        var zeta: Int
        var alpha: Double
        var inner: Inner
        var list: [Inner]
        var names: [String]
        var empty: [Int]
        var slice: [Float]
        var nested: [[Int]]
        var map: [String: Int]
    }

    static let sample = Outer(
        zeta: -42, alpha: 0.1,
        inner: Inner(name: "quote \" backslash \\ newline \n tab \t bell \u{7} é ☃ /", values: [0.1, -3.4028235e38, 1e-7, 0, 12345.678],
                     counts: [Int.min, 0, Int.max], flag: true, note: nil),
        list: [Inner(name: "", values: [], counts: [1], flag: false, note: "x"),
               Inner(name: "b", values: [Float.leastNonzeroMagnitude, 0.5], counts: [], flag: true, note: nil)],
        names: ["a", "", "\u{0}"], empty: [], slice: [1, 2, 3], nested: [[1, 2], [], [3]], map: ["k": 1])

    @Test func whatItWritesReadsBackAsWhatJSONEncoderWrites() throws {
        let ours = try JSONBodyEncoder.encode(Self.sample)
        let theirs = try JSONEncoder().encode(Self.sample)
        #expect(try JSONDecoder().decode(Outer.self, from: Data(ours)) == Self.sample)
        #expect(try JSONDecoder().decode(Outer.self, from: theirs) == Self.sample)
        let a = try JSONSerialization.jsonObject(with: Data(ours)) as! NSDictionary
        let b = try JSONSerialization.jsonObject(with: theirs) as! NSDictionary
        #expect(a == b)
    }

    @Test func keysComeInTheOrderTheyAreEncoded() throws {
        let text = String(decoding: try JSONBodyEncoder.encode(Self.sample), as: UTF8.self)
        let keys = ["\"zeta\"", "\"alpha\"", "\"inner\"", "\"list\"", "\"names\"", "\"empty\"", "\"slice\"", "\"nested\"", "\"map\""]
        let positions = keys.map { text.range(of: $0)!.lowerBound }
        #expect(positions == positions.sorted())
        #expect(text.hasPrefix(#"{"zeta":-42,"alpha":0.1,"inner":{"name":"quote \" backslash \\ newline \n tab \t bell \u0007 é ☃ /","values":[0.1,-3.4028235e+38,1e-07,0.0,12345.678]"#))
        #expect(text.hasSuffix(#""empty":[],"slice":[1.0,2.0,3.0],"nested":[[1,2],[],[3]],"map":{"k":1}}"#))
    }

    @Test func aNilOptionalIsLeftOutUnlessEncodedExplicitly() throws {
        struct Explicit: Encodable {
            var a: String?
            func encode(to encoder: any Encoder) throws {
                var c = encoder.container(keyedBy: CodingKeys.self)
                try c.encode(a, forKey: .a)
            }
            enum CodingKeys: String, CodingKey { case a }
        }
        #expect(String(decoding: try JSONBodyEncoder.encode(Inner(name: "n", values: [], counts: [], flag: false, note: nil)), as: UTF8.self)
                == #"{"name":"n","values":[],"counts":[],"flag":false}"#)
        #expect(String(decoding: try JSONBodyEncoder.encode(Explicit(a: nil)), as: UTF8.self) == #"{"a":null}"#)
    }

    @Test func nonFiniteFloatsAreNull() throws {
        struct Numbers: Encodable { var f: [Float]; var d: Double; var g: Float }
        let text = String(decoding: try JSONBodyEncoder.encode(Numbers(f: [.nan, .infinity, 1], d: -.infinity, g: .nan)), as: UTF8.self)
        #expect(text == #"{"f":[null,null,1.0],"d":null,"g":null}"#)
    }

    @Test func nestedContainersAndSuperEncodersCloseInPlace() throws {
        struct Manual: Encodable {
            enum K: String, CodingKey { case a, b, c, d }
            func encode(to encoder: any Encoder) throws {
                var top = encoder.container(keyedBy: K.self)
                var inner = top.nestedContainer(keyedBy: K.self, forKey: .a)
                var list = inner.nestedUnkeyedContainer(forKey: .b)
                try list.encode(1)
                var deeper = list.nestedContainer(keyedBy: K.self)
                try deeper.encode("x", forKey: .c)
                try list.encode(2)  // closes `deeper`
                try top.encode(true, forKey: .b)  // closes `list` and `inner`
                try "sup".encode(to: top.superEncoder(forKey: .c))
                let empty = top.nestedUnkeyedContainer(forKey: .d)
                _ = empty.count
            }
        }
        let data = try JSONBodyEncoder.encode(Manual())
        #expect(String(decoding: data, as: UTF8.self) == #"{"a":{"b":[1,{"c":"x"},2]},"b":true,"c":"sup","d":[]}"#)
        #expect((try? JSONSerialization.jsonObject(with: Data(data))) != nil)
    }

    @Test func topLevelValuesAndEmptyValues() throws {
        struct Nothing: Encodable { func encode(to encoder: any Encoder) throws {} }
        #expect(String(decoding: try JSONBodyEncoder.encode("a\"b"), as: UTF8.self) == #""a\"b""#)
        #expect(String(decoding: try JSONBodyEncoder.encode(7), as: UTF8.self) == "7")
        #expect(String(decoding: try JSONBodyEncoder.encode([Inner]()), as: UTF8.self) == "[]")
        #expect(String(decoding: try JSONBodyEncoder.encode(Nothing()), as: UTF8.self) == "{}")
        #expect(String(decoding: try JSONBodyEncoder.encode([Nothing(), Nothing()]), as: UTF8.self) == "[{},{}]")
    }

    @Test func errorsCarryTheirCodeAndTheOneShape() throws {
        let response = HTTPResponse.error(status: .notFound, code: "not_found", message: "No \"route\".")
        #expect(response.errorCode == "not_found")
        #expect(String(decoding: response.body, as: UTF8.self) == #"{"error":{"code":"not_found","message":"No \"route\"."}}"#)
        #expect(try JSONDecoder().decode(ErrorResponse.self, from: Data(response.body)) == ErrorResponse(error: .init(code: "not_found", message: "No \"route\".")))
    }
}

/// Media types are read from `Content-Type` in one place.
@Suite struct MediaTypeTests {
    @Test(arguments: [
        ("image/png", "image/png"), (" Image/PNG ; q=1", "image/png"), ("multipart/form-data; boundary=x", "multipart/form-data"),
        ("application/json;charset=utf-8", "application/json"), ("", ""), (" ; x", ""), (";image/png", "image/png"),
        ("\u{A0}image/jpeg\t", "image/jpeg"),
    ])
    func mediaTypes(contentType: String, expected: String) {
        #expect(HTTPRequest.mediaType(of: contentType) == expected)
        var request = HTTPRequest(method: .post, target: "/")
        request.headers.set("Content-Type", contentType)
        #expect(request.mediaType == expected)
    }

    @Test func noContentTypeIsNoMediaType() {
        #expect(HTTPRequest.mediaType(of: nil) == "")
        #expect(HTTPRequest(method: .post, target: "/").mediaType == "")
    }
}
