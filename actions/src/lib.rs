//! runsheet-actions: the action families (core, http, host, kong, layer7).
