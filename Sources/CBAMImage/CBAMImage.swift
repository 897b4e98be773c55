// Image decoding and preprocessing land here (issue: images).
