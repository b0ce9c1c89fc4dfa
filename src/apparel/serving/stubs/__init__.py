"""Generated from serving/apparel.proto by `make proto`; do not edit."""
