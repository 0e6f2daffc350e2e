"""One module per family of exports; each format is a sniffer plus a streaming parser."""
