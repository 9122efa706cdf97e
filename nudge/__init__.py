"""nudge: warehouse-native lifecycle messaging."""
