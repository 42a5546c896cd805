// The fingerprint in this file's name (3f2a1c) changes whenever its content does, so it can be cached forever.
document.getElementById("greeting").textContent = "The script loaded, too.";
