"""The SIP call line: a monitoring user agent the PBX forks the police line to.

Being built (issue 13); registers no call line yet.
"""
