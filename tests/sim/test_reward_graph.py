from PIL import Image

from sim.learn.reward_graph import draw_reward_graph


def test_reward_graph_is_a_png_with_lines_and_episode_dots(tmp_path):
    iterations = [
        {"iteration": i, "mean_reward": 10.0 * i, "mean_progress": 8.0 * i, "evaluation_mean_progress": 9.0 * i}
        for i in range(1, 11)
    ]
    episodes = [{"iteration": i, "reward": 10.0 * i + d, "progress": 8.0 * i} for i in range(1, 11) for d in (-3, 3)]
    path = draw_reward_graph(tmp_path / "reward-graph.png", iterations, episodes, best_iteration=9)
    image = Image.open(path)
    assert image.format == "PNG" and image.size == (900, 480)
    assert len(set(image.convert("RGB").get_flattened_data())) > 50  # lines, dots and text, not a blank canvas
