"""The operator console: a local web app for district operators, committee members and gateway operators
(docs/OPERATOR.md "The operator console"). ``veche console --key KEY.json --node URL``."""
