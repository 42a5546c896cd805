package io.goldenpath.example;

/** Java sources with nothing that builds them: no pom.xml, no build.gradle (this app fails on purpose). */
public final class Main {
    private Main() {
    }

    public static void main(String[] args) {
        System.out.println("Hello from GoldenPath");
    }
}
