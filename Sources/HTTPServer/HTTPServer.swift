// The HTTP/1.1 server lands here (issue: HTTP server).
