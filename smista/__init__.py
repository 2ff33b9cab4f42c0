"""smista: classify, prioritise and route Italian social customer-care posts.

This package holds only the command-line entry point; the stages live in the top-level packages
data/, training/, labeling/ and serving/.
"""
