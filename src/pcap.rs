//! pcap capture (skeleton).
