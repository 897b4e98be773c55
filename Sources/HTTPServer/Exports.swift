// The server's users see the HTTP types, parser and errors as part of it.
@_exported import HTTPCore
