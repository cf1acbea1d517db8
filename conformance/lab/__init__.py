"""The lab: lab hosts controlled over SSH, and the built-in lab of network namespaces."""
