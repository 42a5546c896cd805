package io.goldenpath.example;

import java.net.InetAddress;
import java.net.UnknownHostException;
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
    public Map<String, String> index() throws UnknownHostException {
        return Map.of(
                "message", "Hello from GoldenPath",
                "app", "java-maven",
                "host", InetAddress.getLocalHost().getHostName());
    }

    @GetMapping("/healthz")
    public String health() {
        return "ok";
    }

    public static void main(String[] args) {
        SpringApplication.run(Application.class, args);
    }
}
