package io.goldenpath.example;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.RestController;

/** A small Spring Boot app: GET / answers with a greeting and where it runs. */
@SpringBootApplication
@RestController
public class Application {

    @GetMapping("/")
    public Map<String, String> index() {
        return Map.of(
                "message", "Hello from GoldenPath",
                "app", "java-maven",
                "host", hostname());
    }

    /** The kernel's host name, as Python's socket.gethostname() gives it (no DNS lookup). */
    static String hostname() {
        try {
            return Files.readString(Path.of("/proc/sys/kernel/hostname")).trim();
        } catch (IOException e) {
            return "unknown";
        }
    }

    @GetMapping("/healthz")
    public String health() {
        return "ok";
    }

    public static void main(String[] args) {
        SpringApplication.run(Application.class, args);
    }
}
