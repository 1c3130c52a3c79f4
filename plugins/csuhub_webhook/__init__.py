"""The webhook call line: a CAD/CTI system posts signed calls.

Being built (issue 13); registers no call line yet.
"""
